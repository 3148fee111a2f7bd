"""``python -m sb3_bierl``: the main job's command line (issue 12)."""

import re

import pytest

from sb3_bierl.__main__ import main


def test_trains_plain_es_and_reports(capsys, tmp_path):
    main(["--algo", "es", "--env", "CartPole-v1", "--timesteps", "2000", "--eval-episodes", "1", "--save", str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert out.startswith("ES on CartPole-v1: 2,000 environment steps, seed 0")
    assert "meta update" not in out and "mean return over 1 episodes" in out
    assert (tmp_path / "m.zip").is_file()


def test_bierl_says_what_its_default_meta_level_does_and_counts_its_updates(capsys):
    main(["--env", "CartPole-v1", "--timesteps", "3000", "--eval-episodes", "1"])
    out = capsys.readouterr().out
    assert "Meta level: two-point step-size adaptation of the learning rate" in out  # the default (issue 9)
    lines = [line for line in out.splitlines() if line.startswith("steps ")]
    assert lines and all("meta updates" in line for line in lines)
    assert re.search(r", \d+ meta updates$", out.rstrip())


def test_bierl_with_the_meta_network_says_what_a_meta_update_is(capsys):
    main(["--env", "CartPole-v1", "--meta", "lstm", "--timesteps", "3000", "--eval-episodes", "1"])
    out = capsys.readouterr().out
    assert "Every generation is a meta update" in out
    lines = [line for line in out.splitlines() if line.startswith("steps ")]
    assert lines and all("meta updates" in line for line in lines)
    assert re.search(r"\d+ meta updates \(\d+ of them stepped the meta network\)$", out.rstrip())


def test_unknown_env_and_help_name_the_command(capsys):
    with pytest.raises(SystemExit):
        main(["--env", "CartPol-v1"])
    assert "python -m sb3_bierl: error: --env CartPol-v1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m sb3_bierl")
    with pytest.raises(SystemExit):
        main(["--algo", "es", "--meta", "lstm"])
    assert "--meta sets BiERL's meta level; --algo es has none" in capsys.readouterr().err
