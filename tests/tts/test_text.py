from tts.text import script_runs, split_sentences


def test_split_sentences_at_chinese_and_western_punctuation():
    text = "你好，世界。这是测试！Hello there. Pi is 3.14, see example.com? Yes!\nNew line；末尾…Done"
    assert split_sentences(text, 200) == [
        "你好，世界。",
        "这是测试！",
        "Hello there.",
        "Pi is 3.14, see example.com?",
        "Yes!",
        "New line；",
        "末尾…",
        "Done",
    ]


def test_split_sentences_cuts_long_sentences_at_commas_then_hard():
    pieces = split_sentences("one, two, three, four, " + "x" * 50, 12)
    assert all(len(piece) <= 12 for piece in pieces)
    assert "".join(pieces).replace(" ", "") == ("one,two,three,four," + "x" * 50)


def test_split_sentences_drops_punctuation_only_pieces():
    assert split_sentences("... !!! 。。。", 200) == []


def test_script_runs_switch_between_han_and_other_text():
    assert script_runs("你好 hello world 123，再见 OK") == [
        (True, "你好 "),
        (False, "hello world 123，"),
        (True, "再见 "),
        (False, "OK"),
    ]
