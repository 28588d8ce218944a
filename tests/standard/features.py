"""What the package's chat models lack, declared once for the LangChain standard suites.

The models generate text from text: the embedded and in-process engines (transformers,
vLLM) take no tools, images, PDFs or audio, and the vLLM servers the balanced model talks
to are started without a tool parser (so no tool calls either). Each property below is
the suite's own flag; everything not declared here runs and must pass.
:class:`SuiteModel` is how each suite class names its model and its parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel


class SuiteModel:
    """The suites' ``chat_model_class`` and ``chat_model_params``, read from the class's
    ``model_class`` and ``model_params`` (a method where the parameters are known only
    when the suite runs: a server's URL, an environment variable)."""

    model_class: ClassVar[type[BaseChatModel]]
    model_params: ClassVar[dict[str, Any]] = {}

    def params(self) -> dict[str, Any]:
        """The model's constructor arguments (by default ``model_params``)."""
        return dict(self.model_params)

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return self.model_class

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return self.params()


class TextOnlyChatModel(SuiteModel):
    """The suite flags of a text-in, text-out chat model (mix in before the suite class)."""

    @property
    def has_tool_calling(self) -> bool:
        return False  # no bind_tools: TPO samples plain text, and none of the engines parses tools

    @property
    def has_tool_choice(self) -> bool:
        return False  # follows from has_tool_calling

    @property
    def has_structured_output(self) -> bool:
        return False  # with_structured_output needs tool calling or a JSON mode

    @property
    def supports_json_mode(self) -> bool:
        return False  # no response_format / guided decoding is exposed

    @property
    def supports_image_inputs(self) -> bool:
        return False  # the models are text-only (SmolLM2)

    @property
    def supports_image_urls(self) -> bool:
        return False  # text-only

    @property
    def supports_pdf_inputs(self) -> bool:
        return False  # text-only

    @property
    def supports_audio_inputs(self) -> bool:
        return False  # text-only

    @property
    def supports_model_override(self) -> bool:
        return False  # one model per instance: a per-call `model` is not another model here

    @property
    def returns_usage_metadata(self) -> bool:
        return True  # every answer carries input/output token counts
