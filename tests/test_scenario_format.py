"""Scenario files are a public format: good ones load, bad ones say which step and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meetbot.scenario import ScenarioError, load_scenario, parse_scenario

SEED = Path(__file__).parents[1] / "meetbot" / "scenarios" / "seed-meeting.json"


def test_seed_scenario_loads() -> None:
    s = load_scenario(SEED)
    assert s.bot_name == "assistant"
    assert [p.name for p in s.participants] == ["Dana", "Lee"]
    assert [st.kind for st in s.steps][:5] == ["speak", "speak", "speak", "speak", "wait_for_bot"]
    assert s.steps[0].expect.reply is True
    assert s.steps[3].expect.reply is False
    assert s.steps[4].timeout_s == 60
    assert "agenda" in s.expect_notes


def _base(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "t",
        "participants": [{"name": "Dana", "voice": "piper"}],
        "steps": [{"speaker": "Dana", "say": "hello"}],
    }
    data.update(over)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "top level must be a JSON object"),
        (_base(participants=[]), "'participants' must be a non-empty list"),
        (_base(steps=[{"speaker": "Zed", "say": "hi"}]), "step 1: field 'speaker': 'Zed'"),
        (_base(steps=[{"speaker": "Dana"}]), "step 1: give exactly one of 'say' or 'wav'"),
        (_base(steps=[{"speaker": "Dana", "say": "x", "wav": "a.wav"}]), "exactly one"),
        (_base(steps=[{"speaker": "Dana", "wav": "missing.wav"}]), "step 1: field 'wav'"),
        (_base(steps=[{"say": "x"}]), "step 1: needs 'speaker'"),
        (_base(steps=[{"wait_for": "human"}]), "step 1: field 'wait_for'"),
        (_base(steps=[{"wait_for": "bot", "timeout_s": -1}]), "step 1: field 'timeout_s'"),
        (_base(steps=[{"pause_s": "long"}]), "step 1: field 'pause_s'"),
        (_base(steps=[{"speaker": "Dana", "say": "x", "expect": {"reply": "yes"}}]),
         "step 1: field 'expect.reply'"),
        (_base(steps=[{"speaker": "Dana", "say": "x", "expect": {"mentions": ["a"]}}]),
         "step 1: expect: unknown field(s) ['mentions']"),
        (_base(steps=[{"speaker": "Dana", "say": "x", "shout": True}]), "unknown field(s)"),
        (_base(participants=[{"name": "Dana", "voice": "robot"}]),
         "participant 1: field 'voice': unknown voice 'robot'"),
        (_base(participants=[{"name": "Dana", "voice": "piper:fast"}]), "piper pace"),
        (_base(participants=[{"name": "Dana"}, {"name": "Dana"}]), "duplicate participant"),
        (_base(expect_notes={"agendas": []}), "expect_notes: unknown field(s)"),
    ],
)
def test_malformed_scenarios_name_step_and_field(data: object, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, source="s.json")
    assert message in str(err.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x",\n  "steps": [}\n')
    with pytest.raises(ScenarioError, match="line 2"):
        load_scenario(path)


def test_wav_steps_resolve_relative_to_the_file(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data" / "dana_hello.wav"
    (tmp_path / "clip.wav").write_bytes(data.read_bytes())
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_base(steps=[{"speaker": "Dana", "wav": "clip.wav"}])))
    assert load_scenario(path).steps[0].wav == (tmp_path / "clip.wav").resolve()


def test_a_flite_voice_is_accepted_with_its_name() -> None:
    from meetbot.scenario import parse_scenario

    scenario = parse_scenario({"name": "f", "participants": [{"name": "Ana", "voice": "flite:kal"}],
                               "steps": [{"speaker": "Ana", "say": "Hello."}]})
    assert (scenario.participants[0].voice.engine, scenario.participants[0].voice.option) == (
        "flite", "kal")
