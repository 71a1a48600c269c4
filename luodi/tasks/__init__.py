"""The online path, text -> answer, one file per model family, in call order:
breaking -> segment -> intent -> match -> generate (wired together by ``luodi.pipeline``)."""
