"""The second evaluation set shares no voice and no sentence with the sets the diarizer was tuned or looked at on."""

from __future__ import annotations

from tests.asr.conversations import BACK_CHANNELS, SETS, layout, load_set

EARLIER = ("dev", "dev2", "eval")


def espeak_variants(set_name: str) -> set[str]:
    return {v.name.split("+")[1].lower() for v in SETS[set_name]["voices"] if v.engine == "espeak"}


def spoken(set_name: str) -> set[str]:
    """The sentences the committed conversations of a set speak, back-channels left out."""
    return {turn["text"] for plan in load_set(set_name) for turn in plan["turns"] if not turn.get("back_channel")}


def test_eval2_has_voices_of_its_own():
    used = set().union(*(espeak_variants(name) for name in EARLIER))
    assert espeak_variants("eval2"), "no espeak-ng voices"
    assert not espeak_variants("eval2") & used
    assert {v.language for v in SETS["eval2"]["voices"]} == {"en", "zh"}
    piper = {(v.pitch, v.rate) for name in EARLIER for v in SETS[name]["voices"] if v.engine == "piper"}
    assert not {(v.pitch, v.rate) for v in SETS["eval2"]["voices"] if v.engine == "piper"} & piper
    committed = {(v["engine"], v["name"], v["pitch"], v["rate"]) for plan in load_set("eval2") for v in plan["voices"]}
    earlier = {
        (v["engine"], v["name"], v["pitch"], v["rate"]) for n in EARLIER for p in load_set(n) for v in p["voices"]
    }
    assert not committed & earlier


def test_eval2_has_sentences_of_its_own():
    pools = {text for name in EARLIER for texts in SETS[name]["texts"].values() for text in texts}
    own = {text for texts in SETS["eval2"]["texts"].values() for text in texts}
    assert not own & pools
    assert not spoken("eval2") & set().union(*(spoken(name) for name in EARLIER))
    assert spoken("eval2") <= own and not spoken("eval2") & {w for words in BACK_CHANNELS.values() for w in words}


def test_the_committed_eval2_is_what_its_seed_lays_out():
    plans = load_set("eval2")
    assert plans == layout("eval2")
    assert sorted(len(plan["voices"]) for plan in plans) == [2] * 16 + [3] * 16 + [4] * 16
