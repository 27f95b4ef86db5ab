"""specc.train.data: CSV/NPZ/dict data checked against a spec, with errors that name the column and the row."""
import numpy as np
import pytest
import torch

import specc
from specc.train import data as sd
from specc.errors import DataError

SINE = "input x\nh[4] = logistic(W1·x + b1)\ny[1] = W2·h + b2\n"  # scalar input, size-1 output
VEC = "input u[2]\nh[3] = tanh(A·u + a)\nz[2] = B·h + b\nw = z·z\noutput z, w\n"  # vector and scalar outputs
TWO = "input p, q[2]\nr[2] = relu(A·q + p*c)\n"


def write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# (spec, CSV text, expected shapes of the tensors)
GOOD_CSV = [
    (SINE, "x,y\n0,1\n1,2\n2,3\n", {"x": [3], "y": [3, 1]}),
    (SINE, '"x","y[1]"\n0,1\n1,2\n', {"x": [2], "y": [2, 1]}),
    (SINE, "y , x\n1, 0\n2 ,1\n\n", {"x": [2], "y": [2, 1]}),  # any order, spaces, trailing blank line
    (VEC, "u[1],u[2],z[1],z[2],w\n1,2,3,4,5\n", {"u": [1, 2], "z": [1, 2], "w": [1]}),
    (TWO, "p,q[1],q[2],r[1],r[2]\n1,2,3,4,5\n-1e-3,2.5E2,inf0,0,0\n".replace("inf0", "7"),
     {"p": [2], "q": [2, 2], "r": [2, 2]}),
]


@pytest.mark.parametrize("spec, text, shapes", GOOD_CSV, ids=range(len(GOOD_CSV)))
def test_good_csv(tmp_path, spec, text, shapes):
    tensors = sd.tensors_for(specc.load(spec), write(tmp_path, text), dtype=torch.float64)
    assert {k: list(v.shape) for k, v in tensors.items()} == shapes
    assert all(v.dtype == torch.float64 for v in tensors.values())


def test_values_and_vector_columns_in_order(tmp_path):
    tensors = sd.tensors_for(specc.load(VEC), write(tmp_path, "z[2],u[2],w,z[1],u[1]\n4,2,5,3,1\n"))
    assert tensors["u"].tolist() == [[1, 2]] and tensors["z"].tolist() == [[3, 4]] and tensors["w"].tolist() == [5]


# (spec, CSV text, words in the message, (line, column) of the error or None)
BAD_CSV = [
    (SINE, "x\n1\n", "no data for output 'y'", None),
    (SINE, "x,y,z\n1,2,3\n", "column 'z' is not an input or output", None),
    (SINE, "x,y\n1,2\n3,abc\n", "column 'y': 'abc' is not a number (data row 2)", (3, 3)),
    (SINE, "x,y\n1,2\n3,NA\n", "column 'y': 'NA' is not a number", (3, 3)),
    (SINE, "x,y\n1,nan\n", "column 'y': NaN is not a finite number (data row 1)", (2, 3)),
    (SINE, "x,y\n1,2\ninf,3\n", "column 'x': inf is not a finite number", (3, 1)),
    (SINE, "x,y\n1,2\n3\n", "1 field but the header names 2 columns", (3, 1)),
    (SINE, "x,y\n1,2,3\n", "3 fields but the header names 2", (2, 1)),
    (SINE, "x,y\n", "no data rows", None),
    (SINE, "", "empty file", None),
    (SINE, "x,x,y\n1,1,2\n", "column 'x' appears twice", None),
    (SINE, "x,,y\n1,1,2\n", "empty column name", None),
    (SINE, "x,y,y[1]\n1,2,3\n", "'y' is given twice", None),
    (SINE, "x,y[2]\n1,2\n", "column 'y[2]' is not an input or output", None),
    (VEC, "u[1],z[1],z[2],w\n1,2,3,4\n", "missing column 'u[2]' for input 'u' (size 2)", None),
    (VEC, "u[1],u[2],u[3],z[1],z[2],w\n1,2,3,4,5,6\n", "column 'u[3]' is not an input", None),
]


@pytest.mark.parametrize("spec, text, words, place", BAD_CSV, ids=range(len(BAD_CSV)))
def test_bad_csv(tmp_path, spec, text, words, place):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as caught:
        sd.tensors_for(specc.load(spec), path)
    err = caught.value
    assert words in err.message
    assert str(path) in (err.format())
    if place:
        assert (err.line, err.column) == place
        assert text.splitlines()[place[0] - 1] in err.format()  # the offending line is quoted


def test_file_problems(tmp_path):
    model = specc.load(SINE)
    with pytest.raises(DataError, match="does not exist"):
        sd.tensors_for(model, tmp_path / "missing.csv")
    with pytest.raises(DataError, match="unknown data format '.txt'"):
        sd.tensors_for(model, write(tmp_path, "x,y\n1,2\n", "d.txt"))
    (tmp_path / "latin.csv").write_bytes(b"x,y\n1,\xe9\n")
    with pytest.raises(DataError, match="not UTF-8"):
        sd.tensors_for(model, tmp_path / "latin.csv")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not an NPZ file"):
        sd.tensors_for(model, tmp_path / "junk.npz")


# (spec, arrays, expected shapes) for NPZ files and dicts alike
GOOD_ARRAYS = [
    (SINE, {"x": np.arange(3.0), "y": np.arange(3.0)}, {"x": [3], "y": [3, 1]}),
    (SINE, {"x": np.arange(3.0)[:, None], "y": np.arange(3.0)[:, None]}, {"x": [3], "y": [3, 1]}),
    (VEC, {"u": np.ones((2, 2)), "z": np.ones((2, 2)), "w": np.ones(2)}, {"u": [2, 2], "z": [2, 2], "w": [2]}),
    (VEC, {"u[1]": np.ones(2), "u[2]": np.ones(2), "z": np.ones((2, 2)), "w": np.ones(2)},
     {"u": [2, 2], "z": [2, 2], "w": [2]}),
    (SINE, {"x": np.arange(3), "y": np.array([True, False, True])}, {"x": [3], "y": [3, 1]}),
]


@pytest.mark.parametrize("spec, arrays, shapes", GOOD_ARRAYS, ids=range(len(GOOD_ARRAYS)))
def test_good_npz_and_dict(tmp_path, spec, arrays, shapes):
    np.savez(tmp_path / "d.npz", **arrays)
    for source in (tmp_path / "d.npz", arrays, {k: torch.as_tensor(v) for k, v in arrays.items()}):
        tensors = sd.tensors_for(specc.load(spec), source)
        assert {k: list(v.shape) for k, v in tensors.items()} == shapes


# (spec, arrays, words)
BAD_ARRAYS = [
    (SINE, {"x": np.arange(3.0), "y": np.arange(4.0)}, "'y' has 4 rows but 'x' has 3"),
    (SINE, {"x": np.ones((3, 2)), "y": np.ones(3)}, "'x' is a scalar input"),
    (VEC, {"u": np.ones((2, 3)), "z": np.ones((2, 2)), "w": np.ones(2)}, "'u' has 3 columns, but input 'u' has size 2"),
    (VEC, {"u": np.ones(2), "z": np.ones((2, 2)), "w": np.ones(2)}, "'u' has shape [2], but input 'u' has size 2"),
    (SINE, {"x": np.array([1.0, np.nan]), "y": np.ones(2)}, "row 2: column 'x': NaN is not a finite number"),
    (VEC, {"u": np.array([[1.0, 2.0], [3.0, np.inf]]), "z": np.ones((2, 2)), "w": np.ones(2)},
     "row 2: column 'u[2]': inf is not a finite number"),
    (SINE, {"x": np.ones(0), "y": np.ones(0)}, "no data rows"),
]


@pytest.mark.parametrize("spec, arrays, words", BAD_ARRAYS, ids=range(len(BAD_ARRAYS)))
def test_bad_npz(tmp_path, spec, arrays, words):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match="d.npz") as caught:
        sd.tensors_for(specc.load(spec), tmp_path / "d.npz")
    assert words in caught.value.message


def test_npz_of_strings_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array(["a", "b"]), y=np.ones(2))
    with pytest.raises(DataError, match=r"array 'x' holds text \(<U1\), not numbers"):
        sd.tensors_for(specc.load(SINE), tmp_path / "d.npz")


def test_dict_of_non_numbers_is_refused():
    with pytest.raises(DataError, match=r"^data: array 'x' holds text \(<U1\), not numbers$"):
        sd.tensors_for(specc.load(SINE), {"x": ["a"], "y": [1.0]})
    with pytest.raises(DataError, match="expected a file name or a mapping"):
        sd.tensors_for(specc.load(SINE), [1, 2, 3])


def test_inputs_only_tolerates_output_columns(tmp_path):
    path = write(tmp_path, "x,y\n1,2\n")
    assert list(sd.tensors_for(specc.load(SINE), path, targets=False)) == ["x"]
    with pytest.raises(DataError, match="column 'z' is not an input of the spec"):
        sd.tensors_for(specc.load(SINE), write(tmp_path, "x,z\n1,2\n"), targets=False)


def test_columns_round_trip_exactly(tmp_path):
    values = {"u": torch.tensor([[0.1, 1 / 3], [2e-300, -7.0]], dtype=torch.float64),
              "w": torch.tensor([1e10 / 3, -0.0], dtype=torch.float64)}
    path = sd.write_csv(tmp_path / "out.csv", sd.columns_of(values))
    assert path.read_text().splitlines()[0] == "u[1],u[2],w"
    table = sd.read_table(path)
    assert np.array_equal(table.arrays["u[2]"], values["u"][:, 1].numpy())
    assert np.array_equal(table.arrays["w"], values["w"].numpy())


def test_write_csv_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = sd.write_csv(tmp_path / "out.csv", {"a": np.ones(2)})
    before = target.read_text()

    def interrupted(columns):
        raise KeyboardInterrupt

    monkeypatch.setattr(sd, "csv_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sd.write_csv(target, {"a": np.zeros(2)})
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left behind


def test_spec_nodes_sizes():
    inputs, outputs = sd.spec_nodes(specc.load(VEC))
    assert [(n.name, n.size) for n in inputs] == [("u", 2)]
    assert [(n.name, n.size, n.columns()) for n in outputs] == [("z", 2, ["z[1]", "z[2]"]), ("w", None, ["w"])]


def test_plain_modules_are_refused():
    with pytest.raises(DataError, match="not compiled by specc"):
        sd.tensors_for(torch.nn.Linear(1, 1), {"x": [1.0]})


# ---------------------------------------------------------------- class labels (labels=True: the loss is cross_entropy)
CLASSES = "input x\np[3] = softmax(W·x + b)\nq = a*x\noutput p, q\n"  # a 3-class output and a scalar one


def test_class_labels_become_one_hot_rows(tmp_path):
    expected = [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
    csv_file = write(tmp_path, "x,p,q\n0,0,5\n1,2,6\n2,1,7\n3,2.0,8\n")
    arrays = {"x": np.arange(4.0), "p": np.array([0, 2, 1, 2]), "q": np.arange(4.0)}
    np.savez(tmp_path / "d.npz", **arrays)
    column = dict(arrays, p=arrays["p"][:, None])  # [rows, 1] is one column too
    for source in (csv_file, tmp_path / "d.npz", arrays, column, {k: torch.as_tensor(v) for k, v in arrays.items()}):
        tensors = sd.tensors_for(specc.load(CLASSES), source, labels=True, dtype=torch.float64)
        assert tensors["p"].tolist() == expected
        assert list(tensors["q"].shape) == [4]  # a scalar output's one column is its value, never a label


def test_one_hot_rows_are_taken_as_before_with_labels():
    one_hot = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])  # class probabilities need not be one-hot
    for source in ({"x": np.zeros(2), "p": one_hot, "q": np.zeros(2)},
                   {"x": np.zeros(2), "p[1]": one_hot[:, 0], "p[2]": one_hot[:, 1], "p[3]": one_hot[:, 2],
                    "q": np.zeros(2)}):
        assert sd.tensors_for(specc.load(CLASSES), source, labels=True, dtype=torch.float64)["p"].tolist() == \
            one_hot.tolist()


def test_a_size_1_output_is_never_a_label():
    assert sd.tensors_for(specc.load(SINE), {"x": [0.0, 1.0], "y": [0.5, 2.0]}, labels=True)["y"].tolist() == \
        [[0.5], [2.0]]


def test_labels_without_cross_entropy_are_refused_with_a_hint():
    with pytest.raises(DataError, match=r"'p' has shape \[2\], but output 'p' has size 3 \(one column of class "
                                        r"labels needs the loss cross_entropy\)"):
        sd.tensors_for(specc.load(CLASSES), {"x": [0.0, 1.0], "p": [0, 1], "q": [0.0, 0.0]})


def test_a_missing_label_column_says_labels_may_be_given():
    with pytest.raises(DataError, match="or a column 'p' of class labels 0, 1 or 2"):
        sd.tensors_for(specc.load(CLASSES), {"x": [0.0], "q": [0.0]}, labels=True)


ALLOWED = "'p' has 3 classes, so labels are 0, 1 or 2"
# (the label column, the error's words, its (line, column) in the CSV x,p,q)
BAD_LABELS = [
    ("0,1,2.5", f"column 'p': class label 2.5 is not a whole number: {ALLOWED} (data row 3)", (4, 3)),
    ("0,-1,2", f"column 'p': class label -1 is negative: {ALLOWED} (data row 2)", (3, 3)),
    ("0,1,2,2,1,0,3", f"column 'p': class label 3 is too large: {ALLOWED} (data row 7)", (8, 3)),
    ("0,nan,1", f"column 'p': class label NaN is not a finite number: {ALLOWED} (data row 2)", (3, 3)),
    ("inf,0", f"column 'p': class label inf is not a finite number: {ALLOWED} (data row 1)", (2, 3)),
    ("1,7,-1", "class label 7 is too large", (3, 3)),  # the first bad row, whatever its fault
    ("1e300", "class label 1e+300 is too large", (2, 3)),
]


@pytest.mark.parametrize("labels, words, place", BAD_LABELS, ids=range(len(BAD_LABELS)))
def test_bad_labels_name_the_file_the_column_the_value_the_row_and_what_is_allowed(tmp_path, labels, words, place):
    values = labels.split(",")
    path = write(tmp_path, "x,p,q\n" + "".join(f"{i},{v},0\n" for i, v in enumerate(values)))
    with pytest.raises(DataError) as caught:
        sd.tensors_for(specc.load(CLASSES), path, labels=True)
    report = caught.value.format()
    assert report.startswith(f"{path}:{place[0]}:{place[1]}: error: ") and words in report
    assert report.splitlines()[1].strip() == f"{place[0] - 2},{values[place[0] - 2]},0"  # the line is quoted
    # the same labels as an array: the file and the row, as NPZ errors give them
    np.savez(tmp_path / "d.npz", x=np.zeros(len(values)), p=np.array(values, dtype=float), q=np.zeros(len(values)))
    with pytest.raises(DataError) as caught:
        sd.tensors_for(specc.load(CLASSES), tmp_path / "d.npz", labels=True)
    assert caught.value.message.startswith(f"{tmp_path / 'd.npz'}: row {place[0] - 1}: column 'p': class label ")
    assert words.removesuffix(f" (data row {place[0] - 1})") in caught.value.message


def test_class_label_words():
    assert [sd._classes(k) for k in (2, 3, 4, 5, 10)] == ["0 or 1", "0, 1 or 2", "0, 1, 2 or 3", "0 to 4", "0 to 9"]
