"""The ``exopk data`` subcommands, called through an argparse parser built here."""

import argparse
from pathlib import Path

import pytest

from exopk.data.cli import register

VALID = Path(__file__).parent / "data" / "user_valid.csv"


@pytest.fixture
def run(capsys):
    parser = argparse.ArgumentParser(prog="exopk")
    register(parser.add_subparsers(dest="command", required=True))

    def call(*argv):
        args = parser.parse_args(["data", *argv])
        status = args.func(args)
        out, err = capsys.readouterr()
        return status, out, err

    return call


def test_list(run):
    status, out, _ = run("list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["study_key", "table", "records", "usable", "proxy"]
    rows = {line.split()[0]: line.split() for line in lines[2:] if line and "  " in line}
    assert rows["morishita2015"] == ["morishita2015", "ev.csv", "3", "3", "no"]
    assert rows["hirn2011"][1:] == ["proxies.csv", "19", "19", "yes"]
    assert "66 studies, 453 records" in out
    assert "Proxies are not EVs" in out


def test_show(run):
    status, out, _ = run("show", "morishita2015")
    assert status == 0
    assert "Morishita M et al." in out
    assert "https://cir.nii.ac.jp/crid/1360002214598332288?lang=ja" in out
    assert "percent_id_per_organ" in out
    assert "28" in out and "Abstract" in out


def test_show_proxy_study_says_it_is_not_an_ev(run):
    status, out, _ = run("show", "hirn2011")
    assert status == 0
    assert "gold_nanoparticle (not an EV)" in out


def test_show_unknown_study(run):
    status, out, err = run("show", "morishita")
    assert status == 1
    assert "unknown study 'morishita'" in err and "morishita2015" in err
    assert out == ""


def test_validate_clean_file(run):
    status, out, _ = run("validate", str(VALID))
    assert status == 0
    assert "7 records, no problems found" in out
    assert "2 of 7 records not usable for fitting" in out


def test_validate_lists_every_problem(run, tmp_path):
    text = VALID.read_text().splitlines()
    text[2] = text[2].replace(",2.5,", ",abc,")
    text[4] = text[4].replace(",iv,", ",oral,")
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(text) + "\n")
    status, out, _ = run("validate", str(path))
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == f"{path}, line 3, column 'value': non-numeric value 'abc'"
    assert lines[1].startswith(f"{path}, line 5, column 'route': unknown route 'oral'")
    assert lines[2] == f"2 problems found in {path}"


def test_validate_event_table(run, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("ID,TIME,AMT,CMT,DV,EVID\n1,0,5,1,.,1\n1,-1,.,1,2,0\n")
    status, out, _ = run("validate", "--events", str(path))
    assert status == 1
    assert out.splitlines()[0] == f"{path}, line 3, column 'TIME': negative TIME '-1'"
    path.write_text("ID,TIME,AMT,CMT,DV,EVID\n1,0,5,1,.,1\n1,1,.,1,2,0\n")
    assert run("validate", "--events", str(path))[0] == 0


def test_data_needs_a_subcommand():
    parser = argparse.ArgumentParser(prog="exopk")
    register(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["data"])


def test_usable_counts_the_records_a_model_turns_into_observations(capsys):
    """``exopk data usable MODEL``: per packaged table, the records marked usable, those behind
    observations of the model and the observations, then every reason for the rest."""
    import exopk
    import exopk.data
    from exopk.cli import main
    from exopk.observation import build_observations

    assert main(["data", "usable", "m5_intranasal"]) == 0
    out = capsys.readouterr().out
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.startswith(("ev.csv ", "proxies.csv "))}
    for table in ("ev", "proxies"):
        records = exopk.data.load(table)
        observations, skipped = build_observations(records, model)
        usable = int(records["usable"].sum())
        assert rows[f"{table}.csv"] == [
            str(records.sizes["record"]), str(usable), str(usable - len(skipped)),
            str(len(observations)), str(len(skipped))]
        for reason in {s.reason for s in skipped}:
            assert reason in out
    assert "not usable for any fit (ev.csv, usable_for_fit):" in out
    assert main(["data", "usable", "no_such_model"]) == 2
    assert "no_such_model" in capsys.readouterr().err
