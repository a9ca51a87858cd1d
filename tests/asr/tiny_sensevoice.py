"""A tiny SenseVoiceSmall built in the test: a small config, random weights, a BPE trained here.

It has the real layout of a SenseVoiceSmall directory (config.yaml, model.pt, bpe.model), so
funasr's ``AutoModel`` loads it the way it loads the real model from ``ASR_MODEL_DIR``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TAGS = [
    "<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|nospeech|>", "<|NEUTRAL|>", "<|HAPPY|>", "<|SAD|>",
    "<|EMO_UNKNOWN|>", "<|Speech|>", "<|BGM|>", "<|Event_UNK|>", "<|withitn|>", "<|woitn|>",
]  # fmt: skip
ENCODER = {
    "output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2, "tp_blocks": 1,
    "dropout_rate": 0.0, "positional_dropout_rate": 0.0, "attention_dropout_rate": 0.0, "input_layer": "pe",
    "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True, "kernel_size": 11, "sanm_shfit": 0,
    "selfattention_layer_type": "sanm",
}  # fmt: skip
CONFIG = {
    "model": "SenseVoiceSmall",
    "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
    "encoder": "SenseVoiceEncoderSmall",
    "encoder_conf": ENCODER,
    "tokenizer": "SentencepiecesTokenizer",
    "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
    "frontend": "WavFrontend",
    "frontend_conf": {
        "fs": 16000,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "lfr_m": 7,
        "lfr_n": 6,
        "cmvn_file": None,
    },  # fmt: skip
}
CORPUS = ["hello world this is a tiny model", "the quick brown fox jumps over the lazy dog", "speech in a test"]


def build_tiny_sensevoice(directory: Path, *, always_say: str | None = None) -> Path:
    """Write the model; ``always_say`` biases its CTC layer so every frame decodes to that one token."""
    import funasr.models.sense_voice.model  # noqa: F401 (registers SenseVoiceSmall)
    import sentencepiece as spm
    import torch
    from funasr.register import tables

    directory.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20),
        model_prefix=str(directory / "bpe"),
        vocab_size=60,
        user_defined_symbols=TAGS,
        model_type="bpe",
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
    )
    (directory / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    pieces = spm.SentencePieceProcessor(model_file=str(directory / "bpe.model"))
    torch.manual_seed(0)
    model = tables.model_classes.get("SenseVoiceSmall")(
        encoder=CONFIG["encoder"],
        encoder_conf=ENCODER,
        input_size=80 * 7,
        vocab_size=pieces.get_piece_size(),
        **CONFIG["model_conf"],
    )
    if always_say is not None:
        with torch.no_grad():
            model.ctc.ctc_lo.weight.zero_()
            model.ctc.ctc_lo.bias.fill_(-10.0)
            model.ctc.ctc_lo.bias[pieces.piece_to_id(always_say)] = 10.0
    torch.save(model.state_dict(), directory / "model.pt")
    return directory
