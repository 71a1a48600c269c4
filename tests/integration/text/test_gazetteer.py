"""The NLPCC-2018 lexicons load into a Gazetteer (real data)."""

from luodi.text.gazetteer import Gazetteer


def test_nlpcc_lexicons_load(data_root):
    gaz = Gazetteer.from_dir(data_root / "intent/nlpcc2018/lexicons")
    assert {"singer", "song", "style"} <= set(gaz.types) and len(gaz) > 9000
    assert any(m.type == "singer" for m in gaz.matches("我想听周华健的花心"))
