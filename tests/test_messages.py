"""Every message key exists in every language, and every placeholder matches."""
from __future__ import annotations

import string

from grader.messages import LANGUAGES, Msg, catalogue, render


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_key_exists_in_every_language():
    keys = {lang: set(catalogue(lang)) for lang in LANGUAGES}
    for lang in LANGUAGES:
        for other in LANGUAGES:
            missing = keys[other] - keys[lang]
            assert not missing, f"missing in {lang}: {sorted(missing)}"


def test_placeholders_agree_across_languages():
    base = catalogue(LANGUAGES[0])
    for lang in LANGUAGES[1:]:
        for key, template in catalogue(lang).items():
            assert _fields(template) == _fields(base[key]), f"{key}: placeholders differ between languages"


def test_nested_messages_render_in_the_same_language():
    msg = Msg("loops.loop_problems", {"problems": [Msg("loops.problem_no_step", {"model": Msg("loops.model_rnn")})]})
    assert "optimizer.step()" in render(msg, "en") and "缺少" in render(msg, "zh")
