"""Interactive pages (ours): PCA maps with the atom on hover, heatmaps with the interval on hover."""

import numpy as np
import pandas as pd

from platonic_mlip.interactive import formulas, maps_figure, pairwise_figure, write_page


def test_formulas_are_reduced_per_structure():
    got = formulas(np.array([0, 0, 0, 0, 1, 1]), ["Fe", "Fe", "O", "O", "Na", "Cl"])
    assert got == {0: "FeO", 1: "ClNa"} or got == {0: "FeO", 1: "NaCl"}


def test_maps_have_one_view_per_space_and_model_with_hover_and_aligned_signs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)) * [5, 3, 1, 1, 1]
    numbers = np.array([8, 26, 11, 57] * 15)
    hover = [f"atom {i} · mp-{i}" for i in range(60)]
    spaces = {"raw": {"A": x, "B": -x}, "Platonic (DIRECT)": {"A": x, "B (untrained)": x[:, ::-1]}}
    fig = maps_figure(spaces, numbers, hover, "t")
    menu = fig.layout.updatemenus[0].buttons
    assert [b.label for b in menu] == [
        "raw: A",
        "raw: B",
        "Platonic (DIRECT): A",
        "Platonic (DIRECT): B (untrained)",
    ]
    families = {t.name for t in fig.data}
    assert families == {"chalcogens (G16)", "late TM (G8-12)", "alkali (G1)", "Ln/An"}
    assert len(fig.data) == 4 * len(families)
    # every view shows only its own traces; the first view is visible at first
    for k, b in enumerate(menu):
        visible = b.args[0]["visible"]
        assert sum(visible) == len(families) and all(visible[k * 4 : (k + 1) * 4])
    # B = -A: after sign alignment its map is A's map, axis titles say the flip
    a = np.concatenate([t.x for t in fig.data[:4]])
    b = np.concatenate([t.x for t in fig.data[4:8]])
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert menu[1].args[1]["xaxis.title.text"].startswith("−PC1")
    assert "mp-" in fig.data[0].text[0]
    write_page(fig, tmp_path / "m.html")
    page = (tmp_path / "m.html").read_text()
    assert "cdn.plot.ly" not in page.split("<body>", 1)[0] and "Plotly.newPlot" in page  # offline


def test_pairwise_heatmaps_show_the_interval_on_hover():
    rows = []
    for space, anchors in (("raw", ""), ("platonic", "direct")):
        for a, b, v in (("m1", "m2", 0.5), ("m1", "m1", 1.0), ("m2", "m2", 1.0), ("m1", "c", 0.2)):
            rows.append([a, b, space, anchors, "mknn", v, v + 0.01, v - 0.05, v + 0.05])
    table = pd.DataFrame(
        rows,
        columns=["model_a", "model_b", "space", "anchors", "metric", "value", "mean", "ci_low", "ci_high"],
    )
    fig = pairwise_figure(table, ["m1", "m2", "c"], ["M1", "M2", "C (untrained)"], "t")
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["mknn, raw", "mknn, Platonic (direct)"]
    z, text = np.array(fig.data[0].z, dtype=float), np.array(fig.data[0].text)
    assert z[0, 1] == z[1, 0] == 0.51  # the mean, symmetric
    assert (
        "M1 – M2" in text[0, 1] and "[0.450, 0.550]" in text[0, 1] and "0.500 (paper's sample)" in text[0, 1]
    )
    assert np.isnan(z[1, 2])  # a pair the table lacks stays empty


def test_chemiscope_dataset_is_valid_and_points_at_the_atoms():
    chemiscope = __import__("chemiscope")
    from ase.build import bulk

    from platonic_mlip.interactive import chemiscope_input

    crystals = [bulk("NaCl", "rocksalt", a=5.6), bulk("Fe", "bcc", a=2.87)]
    sites = [(0, 0), (0, 1), (1, 0)]
    maps = {"A": np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), "B (untrained)": np.zeros((3, 2))}
    cats = {
        "chemical family": ["alkali (G1)", "halogens (G17)", "late TM (G8-12)"],
        "element": ["Na", "Cl", "Fe"],
    }
    frames, envs, props, settings = chemiscope_input(crystals, sites, maps, cats)
    data = chemiscope.create_input(structures=frames, properties=props, environments=envs, settings=settings)
    assert [e["structure"] for e in data["environments"]] == [0, 0, 1]
    assert [e["center"] for e in data["environments"]] == [0, 1, 0]
    assert data["properties"]["A PC1"]["values"] == [0.0, 1.0, 2.0]
    assert data["properties"]["element"]["values"] == ["Na", "Cl", "Fe"]
    assert data["settings"]["map"]["x"]["property"] == "A PC1"
