import pandas as pd
import pytest

from detection import read_csv
from detection.errors import DuplicateColumnError, EmptyFileError, MalformedCsvError


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(sep):
    data = f"timestamp{sep}value{sep}note\n2025-01-01 00:00{sep}1.5{sep}a\n2025-01-01 01:00{sep}2.5{sep}b\n"
    frame = read_csv(data.encode())
    assert list(frame.columns) == ["timestamp", "value", "note"]
    assert frame["value"].tolist() == [1.5, 2.5]


def test_utf8_bom_and_latin1_are_read():
    bom = "\ufeffuser,city\nåse,Tromsø\n".encode("utf-8")
    assert read_csv(bom).columns[0] == "user"
    latin = "user,city\nåse,Tromsø\n".encode("latin-1")
    assert read_csv(latin)["city"].iloc[0] == "Tromsø"


def test_quoted_fields_keep_delimiters():
    data = b'user,device\nalice,"Mozilla/5.0 (X11; Linux, x86_64)"\n'
    assert read_csv(data)["device"].iloc[0] == "Mozilla/5.0 (X11; Linux, x86_64)"


def test_index_is_the_data_row_number():
    frame = read_csv(b"a,b\n1,2\n3,4\n5,6\n")
    assert list(frame.index) == [1, 2, 3]


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", EmptyFileError, "the file is empty"),
        (b"   \n\n", EmptyFileError, "the file is empty"),
        (b"timestamp,value\n", EmptyFileError, "header but no data rows"),
        (b"a,b,a\n1,2,3\n", DuplicateColumnError, "column 'a' appears 2 times"),
        (b"a,b\n\n1,2\n3,4,5\n", MalformedCsvError,
         r"line 4 of the file has 3 values but the header names 2 columns: a value that "
         r"contains ',' must be in double quotes"),
        (b"a;b\n1;2\n3;4;5\n", MalformedCsvError, "contains ';' must be in double quotes"),
        (b'a,b\n1,2\n3,"x\n4,5\n', MalformedCsvError,
         r'the quoted value that starts on line 3 of the file is never closed'),
    ],
)
def test_unreadable_files_say_what_is_wrong(data, error, message):
    with pytest.raises(error, match=message):
        read_csv(data)


def test_reads_from_path_and_file_object(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    assert read_csv(path).shape == (1, 2)
    with path.open("rb") as handle:
        pd.testing.assert_frame_equal(read_csv(handle), read_csv(path))


def test_a_duplicate_name_far_into_a_wide_header_is_found():
    names = [f"measurement_{i:05d}" for i in range(5000)] + ["measurement_00007"]
    assert len(",".join(names)) > 64 * 1024
    data = (",".join(names) + "\n" + ",".join(["1"] * len(names)) + "\n").encode()
    with pytest.raises(DuplicateColumnError, match="'measurement_00007' appears 2 times"):
        read_csv(data)


def test_a_header_longer_than_the_sniffing_sample_is_read_whole():
    # Cut at 64 KB, the second name would look like the first.
    first = "p" * 32766
    header = f"ab,{first},{first}zzz"
    frame = read_csv(f"{header}\n1,2,3\n".encode())
    assert list(frame.columns) == ["ab", first, first + "zzz"]


@pytest.mark.parametrize("content", [
    "timestamp,value\n" + "".join(f"2025-01-01 00:{i % 60:02d}:00,{i}\n" for i in range(250)),
    "\ufeffa;b\n" + "".join(f"{i};x{i}\n" for i in range(97)) + ";\n5;y\n",
    "user,city\n" + "åse,Tromsø\n" * 30,
])
@pytest.mark.parametrize("rows", [1, 10, 1000])
def test_reading_in_pieces_gives_the_whole_file(tmp_path, content, rows):
    from detection.reading import read_pieces

    path = tmp_path / "f.csv"
    path.write_bytes(content.encode("latin-1" if "å" in content else "utf-8"))
    whole = read_csv(path)
    for source in (path, path.read_bytes()):  # a file, or an upload held in memory
        pieces = list(read_pieces(source, rows))
        assert all(len(p) <= rows for p in pieces)
        pd.testing.assert_frame_equal(pd.concat(pieces), whole, check_dtype=False)


@pytest.mark.parametrize(("content", "error", "message"), [
    (b"", EmptyFileError, "the file is empty"),
    (b"  \n\n", EmptyFileError, "the file is empty"),
    (b"a,b\n", EmptyFileError, "header but no data rows"),
    (b"a,a\n1,2\n", DuplicateColumnError, "'a' appears 2 times"),
    (b"a,b\n1,2\n3,4,5\n", MalformedCsvError, "line 3 of the file has 3 values"),
])
def test_reading_in_pieces_refuses_what_reading_whole_refuses(tmp_path, content, error, message):
    from detection.reading import read_pieces

    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        read_csv(path)
    with pytest.raises(error, match=message):
        list(read_pieces(path, 1))
    with pytest.raises(error, match=message):
        list(read_pieces(content, 1))
