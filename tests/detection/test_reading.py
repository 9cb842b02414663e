import numpy as np
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
    "".join(f"2025-01-01 00:{i % 60:02d}:00;{i};{i / 7:.3f}\n" for i in range(120)),
    "t;v\n" + "".join(f"2025-01-01 00:{i % 60:02d}:00;{i}{',5' if i % 20 else ''}\n"
                      for i in range(120)),
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
    (b"1,2\n3,4\n5,6,7\n", MalformedCsvError, "line 3 of the file has 3 values but the first line has 2"),
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


@pytest.mark.parametrize(("content", "columns"), [
    ("0.15,0.08,0.0,0.0\n0.16,0.10,0.0,0.0\n", ["column_1", "column_2", "column_3", "column_4"]),
    ("2014-07-01 00:00:00;10844\n2014-07-01 00:30:00;8127\n", ["timestamp", "column_2"]),
    ("7,2014-07-01T00:00:00Z,3\n8,2014-07-01T00:30:00Z,4\n", ["column_1", "timestamp", "column_3"]),
])
def test_a_file_whose_first_line_holds_values_is_read_without_a_header(content, columns):
    """Exports without a header line (SMD's metric files, a logger's timestamp,value
    lines): the first line is data, not names (it was taken for names: its repeated
    0.0 refused the file, or its first reading silently disappeared)."""
    frame = read_csv(content.encode())
    assert list(frame.columns) == columns
    assert list(frame.index) == [1, 2]
    assert frame.iloc[0].astype(str).tolist() == [
        cell.strip() for cell in content.splitlines()[0].replace(";", ",").split(",")]
    assert "no header line" in frame.attrs["warnings"][0]


@pytest.mark.parametrize("header", ["timestamp,101,102", "a,b,c", "2024,2025,total",
                                    "T1,T2,M1", "12h,5m,2nd"])  # pandas reads these as dates
def test_a_first_line_with_any_name_is_the_header(header):
    frame = read_csv(f"{header}\n2025-01-01,1,2\n2025-01-02,3,4\n".encode())
    assert list(frame.columns) == header.split(",")
    assert "warnings" not in frame.attrs


def test_a_file_without_a_header_is_scored_as_the_same_file_with_one():
    from detection import fit_score, prepare

    lines = "".join(f"2025-01-01 {i // 60:02d}:{i % 60:02d}:00,{20 + (i % 7) + (40 if i == 500 else 0)}\n"
                    for i in range(1200))
    named = fit_score(prepare(read_csv(f"timestamp,column_2\n{lines}".encode())))[1]
    dataset = prepare(read_csv(lines.encode()))
    unnamed = fit_score(dataset)[1]
    assert dataset.profile == "sensor"
    assert dataset.warnings[0].startswith("the file has no header line")
    pd.testing.assert_frame_equal(unnamed.frame, named.frame)
    assert unnamed.frame.loc[501, "is_anomaly"] == 1  # row 501: line 501, the spike


def test_numbers_with_a_decimal_comma_are_numbers_where_values_are_not_comma_separated():
    """Spreadsheets in much of Europe export "10,5" with ";" between values."""
    frame = read_csv(b"tid;temperatur;rom;kode\n2025-01-01 00:00;10,5;A;7\n"
                     b"2025-01-01 00:10;-0,75;B;\n2025-01-01 00:20;11;C;8\n")
    assert frame["temperatur"].tolist() == [10.5, -0.75, 11.0]
    assert frame["temperatur"].dtype == "float64"
    assert frame["rom"].tolist() == ["A", "B", "C"]
    # Between commas a quoted "1,000" may be a thousand: left as the text it is.
    assert read_csv(b'a,b\n"10,5",1\n"1,000",2\n')["a"].tolist() == ["10,5", "1,000"]
    # A column with any other text stays text (the usual message names its cells).
    assert read_csv(b"a;b\n10,5;1\nn/a x;2\n")["a"].tolist() == ["10,5", "n/a x"]


def test_numbers_with_thousands_dots_and_percent_signs_are_numbers():
    """Such files were refused: "no usable numeric column ... 60 of 60 cells are not
    numbers"."""
    frame = read_csv(b"tid;effekt;last\n2025-01-01 00:00;1.200,5;45 %\n"
                     b"2025-01-01 00:10;999,25;7,5%\n2025-01-01 00:20;12.000;\n")
    assert frame["effekt"].tolist() == [1200.5, 999.25, 12000.0]
    assert frame["last"].tolist()[:2] == [45.0, 7.5] and np.isnan(frame["last"].iloc[2])
    commas = read_csv(b"time,cpu,mem\n2025-01-01 00:00,45%,1.5\n2025-01-01 00:10,12.5%,2\n")
    assert commas["cpu"].tolist() == [45.0, 12.5]
    assert read_csv(b"a,b\n45%,1\nhigh,2\n")["a"].tolist() == ["45%", "high"]


TOA5 = ("TIMESTAMP,RECORD,BattV_Min,AirTC_Avg\nTS,RN,Volts,Deg C\n,,Min,Avg\n" + "".join(
    f"2024-01-01 {i // 60:02d}:{i % 60:02d}:00,{i},12.{i % 7},{20 + i % 3}.5\n"
    for i in range(100))).encode()


def test_lines_of_units_under_the_header_are_skipped():
    """Dataloggers (Campbell Scientific's tables, and others) write units and kinds of
    reading under the names: the file was refused ("column 'TIMESTAMP': 2 value(s) are
    not dates (rows 1, 2), for example 'TS'")."""
    from detection import prepare
    from detection.reading import read_pieces

    frame = read_csv(TOA5)
    assert frame.index[0] == 3  # row numbers stay the file's
    assert frame["AirTC_Avg"].iloc[0] == 20.5 and frame["RECORD"].dtype == "int64"
    assert frame.attrs["warnings"] == [
        "row(s) 1, 2 under the header name units or kinds of reading ('TS', 'RN', 'Volts', "
        "'Deg C'), not values: skipped"]
    dataset = prepare(frame)
    assert dataset.profile == "sensor"
    assert list(dataset.metrics.columns) == ["BattV_Min", "AirTC_Avg"]  # RECORD counts lines
    pieces = pd.concat(read_pieces(TOA5, 7))
    pd.testing.assert_frame_equal(pieces, frame)
    # A time series' first reading with a word in it keeps its date: a reading; a file
    # without dates has no units lines.
    assert read_csv(b"time,v\n2024-01-01 00:00,ERR\n2024-01-01 00:01,2\n")["v"].tolist() \
        == ["ERR", "2"]
    assert read_csv(b"a,b\nERR,ERR\n1,2\n3,4\n")["a"].tolist() == ["ERR", "1", "3"]


def test_column_names_come_from_the_header_alone_as_the_read_names_them(tmp_path):
    """`vigil score` tells a login file by its columns before reading it: the names
    are those the whole read gives, for any delimiter, a file without a header line
    and Parquet, however wide the file."""
    from detection.reading import column_names, read_table

    files = {
        "semicolon.csv": "Zeit;User;Quell-IP\n2025-01-01 00:00;anna;10.0.0.1\n",
        "headerless.csv": "2025-01-01 00:00,1.5,7\n2025-01-01 00:01,1.6,8\n",
        "wide.csv": ",".join(["timestamp", *(f"m{i}" for i in range(3000))]) + "\n"
                    + ",".join(["2025-01-01", *("1" for _ in range(3000))]) + "\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    # A header longer than the bytes the encoding is told by, not UTF-8 beyond them.
    (tmp_path / "long-header.csv").write_bytes(
        b"timestamp," + b"a" * 70_000 + b"\xe9t\xe9,value\n2025-01-01,1,2\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    pd.DataFrame({" user ": ["a"], "time": ["2025-01-01"]}).to_parquet(tmp_path / "x.parquet")
    for path in tmp_path.iterdir():
        if path.name != "empty.csv":
            assert column_names(path) == list(read_table(path).columns), path.name
    assert column_names(tmp_path / "empty.csv") == []
    assert column_names(tmp_path / "headerless.csv") == ["timestamp", "column_2", "column_3"]
