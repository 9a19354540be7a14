"""The report's own pages: findings written from a run's tables, CSV tables rendered as HTML."""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from platonic_mlip.report import findings_html, findings_rst, limitations, pair_ranking, table_html

MODELS = {
    "7net-0": {"family": "sevenn", "label": "7net-0"},
    "chgnet-0.3.0": {"family": "chgnet", "label": "CHGNet 0.3.0"},
    "dummy-orb-v3": {"family": "orb", "label": "Dummy Orb"},
}
CONTROLS = ["dummy-orb-v3"]


def _pairwise():
    rows = []
    values = {
        ("7net-0", "chgnet-0.3.0"): 0.6,
        ("7net-0", "dummy-orb-v3"): 0.2,
        ("chgnet-0.3.0", "dummy-orb-v3"): 0.3,
    }
    for (a, b), v in values.items():
        rows.append([a, b, "platonic", "direct", "composite", v])
        rows.append([a, b, "platonic", "direct", "ot_normalised", 1 - v])
        rows.append([a, b, "raw", "", "composite", v / 2])
    for m in MODELS:
        rows.append([m, m, "platonic", "direct", "composite", 1.0])
    return pd.DataFrame(rows, columns=["model_a", "model_b", "space", "anchors", "metric", "value"])


def _claims(verdicts=("supported", "not supported")):
    return pd.DataFrame(
        {
            "claim_id": ["1", "1", "2"],
            "claim": [
                "Raw spaces differ, Platonic ones align.",
                "Raw spaces differ, Platonic ones align.",
                "Two",
            ],
            "metric": ["mknn", "cka", "mknn"],
            "verdict": [*verdicts, "not testable on this run"],
            "reason": ["", "", "the run has no untrained control"],
        }
    )


def _text(page):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_pair_ranking_orders_best_first_and_flags_controls():
    r = pair_ranking(_pairwise(), "platonic", "direct", "composite", CONTROLS)
    assert list(zip(r.model_a, r.model_b, strict=True))[0] == ("7net-0", "chgnet-0.3.0")
    assert r["value"].is_monotonic_decreasing and r["is_control"].tolist() == [False, True, True]
    assert len(r) == 3  # self-pairs left out
    cost = pair_ranking(_pairwise(), "platonic", "direct", "ot_normalised", CONTROLS)
    assert cost["value"].is_monotonic_increasing and cost.iloc[0]["model_b"] == "chgnet-0.3.0"


def test_findings_are_written_from_the_tables():
    page = findings_html(_claims(), _pairwise(), MODELS, CONTROLS, "direct", n_pairs=1, run_name="demo")
    text = _text(page)
    assert "Findings of run demo" in text and "3 models: 2 trained" in text
    assert "mknn: supported ; cka: not supported" in text
    assert "most alike 7net-0 CHGNet 0.3.0 0.600" in text
    assert "least alike 7net-0 Dummy Orb (untrained) 0.200" in text
    assert "Claim 2 not testable: the run has no untrained control" in text
    # the numbers follow the table: change it and the page changes
    other = _pairwise()
    other.loc[(other.model_b == "chgnet-0.3.0") & (other.metric == "composite"), "value"] = 0.1
    assert "most alike 7net-0 CHGNet 0.3.0" not in _text(
        findings_html(_claims(), other, MODELS, CONTROLS, "direct", 1)
    )


def test_limitations_say_what_the_roster_cannot_show():
    one_family = {"7net-0": {"family": "sevenn"}, "7net-l3i5": {"family": "sevenn"}}
    out = limitations(one_family, [], None)
    assert any("one architecture (sevenn)" in s for s in out) and any(
        "no untrained control" in s for s in out
    )
    out = limitations(MODELS, CONTROLS, _claims())
    assert any("only as untrained controls (orb)" in s for s in out)
    assert not any("one architecture" in s for s in out)


def test_table_html_shades_controls_labels_models_and_joins_intervals():
    frame = pd.DataFrame(
        {
            "model_a": ["7net-0", "7net-0"],
            "model_b": ["chgnet-0.3.0", "dummy-orb-v3"],
            "value": [0.51234, np.nan],
            "ci_low": [0.4, np.nan],
            "ci_high": [0.6, np.nan],
            "n": [3, 4],
        }
    )
    page = table_html(frame, "T", "a note", CONTROLS, {m: s["label"] for m, s in MODELS.items()})
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page)
    assert rows[0].count("<th>") == 5 and "interval" in rows[0]  # ci_low/ci_high -> one column
    assert "CHGNet 0.3.0" in rows[1] and "0.512" in rows[1] and "[0.400, 0.600]" in rows[1]
    assert 'class="control"' in rows[2] and "Dummy Orb (untrained)" in rows[2] and "–" in rows[2]
    assert 'class="control"' not in rows[1] and "a note" in page


def test_every_figure_has_report_metadata_and_a_caption():
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    block = common.split("REPORT_FIGURES = {", 1)[1].split("\n}\n", 1)[0]
    names = re.findall(r'^\s+"(\w+)": \(', block, flags=re.M)
    figures = "".join(
        p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")) if p.name != "common.smk"
    )
    assert "report(f" not in figures  # every figure goes through figure_outputs (PNG reported once)
    fig4 = re.findall(r'"(fig4[a-d]_\w+)": "', common)
    fig3 = re.findall(r'"(fig3[bc]_\w+)": "', common)
    used = set(re.findall(r'figure_outputs\("(\w+)"\)', figures)) | set(fig4) | set(fig3)
    assert used == set(names)
    for name in names:
        assert (ROOT / "workflow" / "report" / f"{name}.rst").exists(), name


@pytest.mark.parametrize("page", ["workflow", "findings"])
def test_report_texts_exist(page):
    assert (ROOT / "workflow" / "report" / f"{page}.rst").read_text().strip()


def test_findings_for_the_landing_page_are_escaped_restructuredtext():
    from docutils.core import publish_parts

    claims = _claims()
    claims.loc[0, "claim"] = "Spaces *align* under `anchors` | pipes_"
    rst = findings_rst(claims, _pairwise(), MODELS, CONTROLS, "direct", n_pairs=1)
    assert rst.startswith("{% raw %}") and rst.rstrip().endswith("{% endraw %}")
    body = rst.replace("{% raw %}", "").replace("{% endraw %}", "")
    page = publish_parts(body, writer_name="html", settings_overrides={"report_level": 2, "halt_level": 2})
    text = _text(page["html_body"])
    assert "Spaces *align* under `anchors` | pipes_" in text  # markup characters shown, not interpreted
    assert "mknn supported , cka not supported" in text.replace("  ", " ")
    assert "7net-0 – CHGNet 0.3.0 0.600" in text and "Dummy Orb (untrained)" in text
    assert "only as untrained controls (orb)" in text


def test_a_claim_measured_in_two_spaces_names_the_space_of_each_verdict():
    import pandas as pd

    from platonic_mlip.report import row_labels

    rows = pd.DataFrame(
        {
            "metric": ["move", "move", "other"],
            "space": ["raw", "Platonic", "raw"],
            "anchors": ["", "direct", ""],
        }
    )
    assert row_labels(rows) == ["move (raw)", "move (Platonic, direct)", "other"]
