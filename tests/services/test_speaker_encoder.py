"""The speaker encoder without torch: Resemblyzer's weights read from its legacy torch.save file, the GE2E
network run in NumPy, giving what torch's own nn.LSTM gives on the same weights."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from services.legacy_checkpoint import MAGIC, PROTOCOL, load_state_dicts
from services.speaker_encoder import ResemblyzerEncoder, resemblyzer_weights


def test_the_weights_file_reads_as_torch_reads_it():
    torch = pytest.importorskip("torch")
    ours = load_state_dicts(resemblyzer_weights())["model_state"]
    theirs = torch.load(resemblyzer_weights(), map_location="cpu", weights_only=True)["model_state"]
    assert set(ours) == set(theirs)
    for name, tensor in theirs.items():
        assert np.array_equal(ours[name], tensor.numpy()), name


def test_numpy_ge2e_embeds_as_torch_lstm_does():
    torch = pytest.importorskip("torch")
    state = torch.load(resemblyzer_weights(), map_location="cpu", weights_only=True)["model_state"]
    lstm, linear = torch.nn.LSTM(40, 256, 3, batch_first=True), torch.nn.Linear(256, 256)
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
    encoder = ResemblyzerEncoder()
    encoder.load()
    assert encoder.model is not None
    rng = np.random.default_rng(7)
    clips = [rng.standard_normal(16000 * seconds).astype(np.float32) * 0.05 for seconds in (1, 3)]
    mels = np.stack([mel for clip in clips for mel in encoder.partials(clip)])
    with torch.no_grad():
        _, (hidden, _) = lstm(torch.from_numpy(mels))
        raw = torch.relu(linear(hidden[-1]))
        expected = (raw / raw.norm(dim=1, keepdim=True)).numpy()
    assert np.abs(encoder.model(mels) - expected).max() < 1e-4


def test_a_weights_file_naming_anything_else_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as file:
        for header in (MAGIC, PROTOCOL, {"little_endian": True}):
            pickle.dump(header, file)
        file.write(b"cos\nsystem\n(S'true'\ntR.")  # os.system("true") if it were unpickled freely
    with pytest.raises(pickle.UnpicklingError, match="os.system is not allowed"):
        load_state_dicts(path)
