"""What the package's chat models lack, declared once for the LangChain standard suites.

The models generate text from text: the embedded and in-process engines (transformers,
vLLM) take no tools, images, PDFs or audio, and the vLLM servers the balanced model talks
to are started without a tool parser (so no tool calls either). Each property below is
the suite's own flag; everything not declared here runs and must pass.
"""

from __future__ import annotations


class TextOnlyChatModel:
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
