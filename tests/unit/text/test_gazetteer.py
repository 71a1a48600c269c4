import pytest

from luodi.text.gazetteer import Gazetteer, LexiconError, Match


@pytest.fixture
def gaz():
    return Gazetteer({"singer": ["周杰伦", "杰伦", "刘德华"], "song": ["稻香", "冰雨", "周杰伦"]})


def test_matches_are_all_kept_including_nested_and_multi_type(gaz):
    found = gaz.matches("来一首周杰伦的稻香")
    assert Match(3, 6, "singer", "周杰伦") in found and Match(3, 6, "song", "周杰伦") in found
    assert Match(4, 6, "singer", "杰伦") in found  # nested inside 周杰伦
    assert Match(7, 9, "song", "稻香") in found and len(found) == 4


def test_char_labels_bioes_multi_label(gaz):
    labels = gaz.char_labels("周杰伦唱冰雨")
    assert labels[0] == {"B-singer", "B-song"}
    assert labels[1] == {"I-singer", "I-song", "B-singer"}
    assert labels[2] == {"E-singer", "E-song"}
    assert labels[3] == set() and labels[4] == {"B-song"} and labels[5] == {"E-song"}
    assert set().union(*labels) <= set(gaz.label_vocabulary())
    with pytest.raises(LexiconError, match="unknown lexicon types"):
        gaz.char_labels("x", types=["city"])


def test_overlapping_matches_and_longest_reading():
    gaz = Gazetteer({"song": ["我们都一样", "一样的月光"]})
    assert [m.value for m in gaz.matches("我们都一样的月光")] == ["我们都一样", "一样的月光"]
    assert [m.value for m in gaz.longest_matches("我们都一样的月光")] == ["我们都一样"]


def test_lexicon_update_is_matched_at_once(gaz):
    assert gaz.matches("播放毛不易的消愁") == []
    gaz.add("singer", ["毛不易"])
    assert gaz.matches("播放毛不易的消愁") == [Match(2, 5, "singer", "毛不易")]


def test_single_characters_are_ignored_by_default():
    assert Gazetteer({"song": ["雨", "雨天"]}).matches("雨天") == [Match(0, 2, "song", "雨天")]
    assert len(Gazetteer({"song": ["雨"]}, min_length=1).matches("雨天")) == 1


def test_malformed_lexicon_line_names_file_and_line(tmp_path):
    path = tmp_path / "singer.txt"
    path.write_text("周杰伦\n刘德\x07华\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"singer\.txt:2: .*control"):
        Gazetteer().add_file("singer", path)
    with pytest.raises(LexiconError, match="lexicon type"):
        Gazetteer({"歌手": ["x"]})
    with pytest.raises(TypeError):
        Gazetteer().matches(None)
