"""Writes the hostile and broken CSVs of this folder (run it to regenerate them):
files an attacker or a careless export would produce. Each must give `vigil score` exit
2 with one `error:` line, or a scored output (with warnings): never a traceback."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def times(n: int, start: int = 0) -> list[str]:
    return [f"2025-01-01 {(start + i) // 60 % 24:02d}:{(start + i) % 60:02d}:00" for i in range(n)]


def series(values, header="timestamp,value") -> str:
    return header + "\n" + "".join(f"{t},{v}\n" for t, v in zip(times(len(values)), values,
                                                                 strict=True))


def logins(users, n=60) -> str:
    rows = [f"{users[i % len(users)]},{t},10.0.0.{i % 9},NO,Oslo,laptop,{i % 4 != 0}"
            for i, t in enumerate(times(n))]
    return "user,timestamp,ip,country,city,device,success\n" + "\n".join(rows) + "\n"


NORMAL = [20 + (i % 5) for i in range(60)]
FILES: dict[str, str | bytes] = {
    "empty.csv": b"",
    "whitespace_only.csv": "  \n\n\t\n",
    "header_only.csv": "timestamp,value\n",
    "duplicate_headers.csv": "timestamp,value,value\n" + "".join(
        f"{t},1,2\n" for t in times(30)),
    "extra_values.csv": series(NORMAL).replace("\n2025-01-01 00:10:00,20\n",
                                               "\n2025-01-01 00:10:00,20,5,6\n"),
    "unclosed_quote.csv": series(NORMAL).replace("00:05:00,20", '00:05:00,"20'),
    "nul_in_user.csv": logins(["ana", "b\x00ob", "cy"]),
    "long_user.csv": logins(["ana", "x" * 300, "cy"]),
    "html_user.csv": logins(["ana", "<script>alert(1)</script>", "<img src=x onerror=1>"]),
    "formula_cells.csv": logins(["=HYPERLINK(\"http://x\";\"y\")", "@SUM(A1)", "+cmd|' /C calc'!A0",
                                 "-2+3"]),
    "formula_header.csv": series(NORMAL, header="timestamp,=HYPERLINK(\"http://x\")"),
    "markdown_header.csv": series(NORMAL, header="timestamp,![b](http://127.0.0.1:9/x.png)"),
    "control_chars_header.csv": series(NORMAL, header="timestamp,\x1b[31mred\x1b[0m"),
    "rtl_override_user.csv": logins(["ana", "evil\u202egnp.exe", "cy"]),
    "crlf.csv": series(NORMAL).replace("\n", "\r\n"),
    "bom.csv": "\ufeff" + series(NORMAL),
    "latin1.csv": series(NORMAL, header="timestamp,température").encode("latin-1"),
    "semicolon_decimal_comma.csv": "timestamp;value\n" + "".join(
        f"{t};{v},5\n" for t, v in zip(times(60), NORMAL, strict=True)),
    "tab_separated.csv": series(NORMAL).replace(",", "\t"),
    "pipe_separated.csv": series(NORMAL).replace(",", "|"),
    "text_in_one_of_seven.csv": series(["ERR" if i % 7 == 0 else v
                                        for i, v in enumerate(NORMAL)]),
    "text_in_one_of_three.csv": series(["1", "x", "3"]),
    "all_text.csv": series(["a", "b", "c"] * 10),
    "infinities.csv": series(["inf" if i == 9 else "-inf" if i == 20 else v
                              for i, v in enumerate(NORMAL)]),
    "near_float_max.csv": series(["1e308" if i == 30 else v for i, v in enumerate(NORMAL)]),
    "missing_markers.csv": series(["NaN" if i % 9 == 0 else "null" if i % 11 == 0 else
                                   "-" if i % 13 == 0 else v for i, v in enumerate(NORMAL)]),
    "bad_dates.csv": series(NORMAL).replace("2025-01-01 00:07:00", "31/02/2025 25:61"),
    "dates_out_of_order.csv": "timestamp,value\n" + "".join(
        f"{t},{v}\n" for t, v in zip(reversed(times(60)), NORMAL, strict=True)),
    "mixed_timezones.csv": "timestamp,value\n" + "".join(
        f"{t}{'+02:00' if i % 2 else 'Z'},{v}\n" for i, (t, v) in
        enumerate(zip(times(60), NORMAL, strict=True))),
    "single_row.csv": series([1]),
    "constant_value.csv": series([5] * 60),
    "only_an_id.csv": "id\n" + "".join(f"row-{i}\n" for i in range(40)),
    "booleans.csv": series(["true" if i % 2 else "false" for i in range(60)]),
    "login_without_ip.csv": "user,timestamp\n" + "".join(f"ana,{t}\n" for t in times(30)),
    "many_columns.csv": "timestamp," + ",".join(f"m{i}" for i in range(300)) + "\n" + "".join(
        f"{t}," + ",".join(str((i * j) % 7) for j in range(300)) + "\n"
        for i, t in enumerate(times(40))),
    "huge_cell.csv": series(NORMAL, header="timestamp,value,note").replace(
        "\n", ",ok\n").replace("timestamp,value,note,ok\n", "timestamp,value,note\n").replace(
        "00:03:00,23,ok", "00:03:00,23," + "y" * 100_000),
    "quoted_newlines.csv": "timestamp,value,note\n" + "".join(
        f'{t},{v},"line one\nline two"\n' for t, v in zip(times(40), NORMAL[:40], strict=True)),
    "binary_garbage.csv": bytes(range(256)) * 8,
}


def main() -> None:
    for name, content in FILES.items():
        (HERE / name).write_bytes(content if isinstance(content, bytes)
                                  else content.encode("utf-8"))


if __name__ == "__main__":
    main()
