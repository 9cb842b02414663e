"""Generate the bundled samples with injected, labelled anomalies.

Each sample gets a labels file (``<name>.labels.csv``: row, pattern, incident) that the
detector never reads; tests and benchmarks compare flags with it. Row numbers count
data rows from 1, as in Vigil's messages. Output is deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sample_data import SAMPLE_DIR

START = pd.Timestamp("2025-06-01 00:00:00")


def _write(out: Path, name: str, frame: pd.DataFrame, labels: list[tuple[int, str, str]]):
    frame.to_csv(out / name, index=False)
    pd.DataFrame(labels, columns=["row", "pattern", "incident"]).sort_values("row").to_csv(
        out / name.replace(".csv", ".labels.csv"), index=False)


def elevators(rng: np.random.Generator, days: int = 14) -> tuple[pd.DataFrame, list]:
    """Four elevators every 10 minutes; a vibration spike, a humidity drift, a stuck sensor."""
    times = pd.date_range(START, periods=days * 144, freq="10min")
    frames = []
    for k, elevator in enumerate(["E1", "E2", "E3", "E4"]):
        hour = times.hour.to_numpy() + times.minute.to_numpy() / 60
        busy = np.exp(-((hour - 8.5) ** 2) / 3) + np.exp(-((hour - 17.5) ** 2) / 3)
        weekend = (times.day_of_week >= 5).astype(float)
        revolutions = 40 + 220 * busy * (1 - 0.6 * weekend) + rng.normal(0, 8, len(times))
        humidity = 45 + 6 * np.sin(2 * np.pi * (hour - 15) / 24) + rng.normal(0, 1.2, len(times))
        vibration = 18 + 2 * k + 0.03 * revolutions + rng.normal(0, 1.5, len(times))
        frames.append(pd.DataFrame({
            "timestamp": times, "elevator_id": elevator, "revolutions": revolutions.round(1),
            "humidity": humidity.round(2), "vibration": vibration.round(2)}))
    frame = pd.concat(frames, ignore_index=True)
    labels = []

    def rows(elevator, start, n):
        idx = frame.index[(frame["elevator_id"] == elevator) & (frame["timestamp"] >= start)][:n]
        return idx

    for i, at in enumerate(["2025-06-04 11:20", "2025-06-09 15:40", "2025-06-12 03:10"]):
        idx = rows("E2", pd.Timestamp(at), 2)
        frame.loc[idx, "vibration"] += rng.uniform(35, 50, len(idx)).round(2)
        labels += [(r + 1, "spike", f"vibration spike {i + 1}") for r in idx]
    idx = rows("E3", pd.Timestamp("2025-06-07 06:00"), 144)
    frame.loc[idx, "humidity"] += np.linspace(0, 25, len(idx)).round(2)
    labels += [(r + 1, "drift", "humidity drift") for r in idx[48:]]  # once it is visible
    idx = rows("E4", pd.Timestamp("2025-06-10 09:00"), 48)
    frame.loc[idx, "vibration"] = frame.loc[idx[0], "vibration"]
    labels += [(r + 1, "stuck", "stuck vibration sensor") for r in idx[6:]]
    frame = frame.round({"humidity": 2, "vibration": 2})  # 68.01, not 68.00999999999999
    frame = frame.sort_values(["timestamp", "elevator_id"], kind="stable")
    position = {old: new for new, old in enumerate(frame.index)}
    frame = frame.reset_index(drop=True)
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame, [(position[r - 1] + 1, p, i) for r, p, i in labels]


def temperature(rng: np.random.Generator, days: int = 30) -> tuple[pd.DataFrame, list]:
    """Hourly temperature with a daily cycle; a spike, a dip and a shifted afternoon."""
    times = pd.date_range(START, periods=days * 24, freq="h")
    value = 21 + 4 * np.sin(2 * np.pi * (times.hour.to_numpy() - 9) / 24) + rng.normal(0, 0.5, len(times))
    labels = []
    for at, delta, name in [(150, 12.0, "spike"), (400, -10.0, "dip")]:
        value[at] += delta
        labels.append((at + 1, name, f"temperature {name}"))
    value[560:566] += 6.0
    labels += [(r + 1, "level_shift", "temperature level shift") for r in range(560, 566)]
    frame = pd.DataFrame({"timestamp": times.strftime("%Y-%m-%dT%H:%M:%S"),
                          "value": value.round(2)})
    return frame, labels


def machine(rng: np.random.Generator, days: int = 30, start: pd.Timestamp = START,
            anomalies: bool = True) -> tuple[pd.DataFrame, list]:
    """One machine's temperature every 10 minutes: a daily cycle, noise that lingers for
    an hour; six spikes, a two-day drift and a stuck sensor. With ``anomalies=False``,
    normal history to train on (not one of the bundled samples: the quality bench and
    the tests draw as many as they need)."""
    times = pd.date_range(start, periods=days * 144, freq="10min")
    hour = times.hour.to_numpy() + times.minute.to_numpy() / 60
    noise = np.convolve(rng.normal(0, 1, len(times) + 5), np.ones(6) / np.sqrt(6), "valid")
    value = 60 + 8 * np.sin(2 * np.pi * (hour - 14) / 24) + 1.5 * noise
    labels = []
    if anomalies:
        n = len(times)
        for k, at in enumerate(np.sort(rng.choice(np.arange(100, n * 5 // 9), 6, replace=False))):
            value[at] += rng.choice([-1, 1]) * rng.uniform(10, 30)
            labels.append((at + 1, "spike", f"spike {k + 1}"))
        drift = np.arange(n * 4 // 7, n * 4 // 7 + 288)
        value[drift] += np.linspace(0, 20, drift.size)
        labels += [(r + 1, "drift", "drift") for r in drift]
        stuck = np.arange(n * 6 // 7, n * 6 // 7 + 60)
        value[stuck] = value[stuck[0]]
        labels += [(r + 1, "stuck", "stuck sensor") for r in stuck]
    frame = pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
                          "temperature": value.round(2)})
    return frame, labels


SERVER_METRICS = 24


def server(rng: np.random.Generator, days: int = 7, start: pd.Timestamp = START,
           incidents: bool = True, machine: int = 0) -> tuple[pd.DataFrame, list]:
    """One server's ``SERVER_METRICS`` metrics a minute, driven by a few shared causes
    (the day's load, a slow drift, request bursts) as SMD's machines are: a fault shows
    as a few metrics leaving their usual relation. A backup every six hours lifts three
    metrics for ten minutes (normal). With ``incidents``, eight faults: a relation
    break, a burst on three metrics, a level shift, a stuck metric, a surge beyond the
    usual load, erratic metrics, two metrics turned against the load, a slow drift.
    ``machine`` fixes how the metrics depend on the causes; ``rng`` draws the days."""
    build = np.random.default_rng(machine)
    weight = build.normal(0, 1, (SERVER_METRICS, 3)) * np.array([1.0, 0.5, 0.6])
    weight[:, 0] = np.abs(weight[:, 0]) + 0.5  # every metric follows the load
    noise = build.uniform(0.1, 0.4, SERVER_METRICS)
    scale = build.uniform(1, 100, SERVER_METRICS)
    n = days * 1440
    times = pd.date_range(start, periods=n, freq="1min")
    hour = times.hour.to_numpy() + times.minute.to_numpy() / 60
    load = np.sin(2 * np.pi * (hour - 15) / 24) + np.convolve(
        rng.normal(0, 0.15, n + 29), np.ones(30) / 30 ** 0.5, "valid")
    slow = np.cumsum(rng.normal(0, 0.01, n))
    slow -= np.convolve(slow, np.ones(1441) / 1441, "same")  # wanders, no trend
    bursts = np.convolve((rng.random(n + 9) < 0.01) * rng.exponential(1, n + 9),
                         np.exp(-np.arange(10) / 3), "valid")
    z = weight @ np.stack([load, slow, bursts])
    z += noise[:, None] * rng.normal(0, 1, (SERVER_METRICS, n))
    backup = np.flatnonzero((times.hour.to_numpy() % 6 == 2) & (times.minute.to_numpy() < 10))
    z[np.ix_([3, 7, 11], backup)] += 3.0
    labels = []
    if incidents:
        at = np.sort(rng.choice(np.arange(120, n - 300, 300), 8, replace=False))
        # fault: (metrics, readings, the metric's readings during it from metric m's)
        faults = {
            "relation break": ([0, 1], 60,  # idles while busy
                               lambda m, rows: z[m, rows] - weight[m, 0] * (load[rows] + 1.2)),
            "burst": ([2, 5, 9], 10, lambda m, rows: z[m, rows] + 6 * noise[m] + 2),
            "level shift": ([4, 6, 8, 10], 120, lambda m, rows: z[m, rows] + 2.5),
            "stuck": ([12], 90, lambda m, rows: np.full(rows.size, z[m, rows[0]])),
            "surge": (range(SERVER_METRICS), 30,
                      lambda m, rows: z[m, rows] + 2.5 * weight[m, 0]),
            "erratic": ([13, 14, 15], 60, lambda m, rows: z[m, rows] + rng.normal(
                0, 4 * noise[m] + 0.5, rows.size)),
            "against the load": ([16, 17], 90,
                                 lambda m, rows: z[m, rows] - 2 * weight[m, 0] * load[rows]),
            "drift": ([18, 19], 180, lambda m, rows: z[m, rows] + np.linspace(0, 3, rows.size)),
        }
        for start_at, (kind, (metrics, length, effect)) in zip(at, faults.items(), strict=True):
            rows = np.arange(start_at, start_at + length)
            for m in metrics:
                z[m, rows] = effect(m, rows)
            labels += [(r + 1, kind.replace(" ", "_"), kind) for r in rows]
    frame = pd.DataFrame((scale[:, None] * (z + 5)).T.round(3),
                         columns=[f"m{k:02d}" for k in range(SERVER_METRICS)])
    frame.insert(0, "timestamp", times.strftime("%Y-%m-%d %H:%M:%S"))
    return frame, labels


PLACES = [  # country, city, latitude, longitude, first two octets of local IPs
    ("Norway", "Oslo", 59.91, 10.75, "84.208"), ("Norway", "Bergen", 60.39, 5.32, "84.210"),
    ("Germany", "Berlin", 52.52, 13.40, "91.64"), ("Germany", "Munich", 48.14, 11.58, "91.66"),
    ("France", "Paris", 48.86, 2.35, "90.12"), ("United Kingdom", "London", 51.51, -0.13, "81.2"),
    ("Spain", "Madrid", 40.42, -3.70, "88.4"), ("Poland", "Warsaw", 52.23, 21.01, "83.30"),
    ("Sweden", "Stockholm", 59.33, 18.07, "78.70"),
]
FOREIGN = [
    ("Brazil", "São Paulo", -23.55, -46.63, "177.10"), ("Nigeria", "Lagos", 6.52, 3.38, "105.112"),
    ("Russia", "Moscow", 55.76, 37.62, "95.165"), ("China", "Beijing", 39.90, 116.40, "123.112"),
    ("Vietnam", "Hanoi", 21.03, 105.85, "113.160"), ("United States", "New York", 40.71, -74.0,
                                                      "72.229"),
]
DEVICES = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
]
ATTACK_DEVICES = ["python-requests/2.31.0", "curl/8.4.0",
                  "Mozilla/5.0 (Windows NT 6.1; rv:52.0) Gecko/20100101 Firefox/52.0"]


def _attacks(rng, names, profiles, start, event) -> None:
    """Takeovers, impossible travel, brute force and password spray among ``names``."""
    victims = iter(rng.permutation(names))
    for k in range(8):  # account takeover: foreign place, new IP and device, at night
        user = next(victims)
        place = FOREIGN[k % len(FOREIGN)]
        time = start + pd.Timedelta(days=int(rng.integers(8, 29)), hours=float(rng.uniform(1, 4)))
        ip = f"{place[4]}.{rng.integers(1, 255)}.{rng.integers(2, 250)}"
        device = ATTACK_DEVICES[k % len(ATTACK_DEVICES)]
        for j in range(2):
            event(user, time + pd.Timedelta(minutes=7 * j), place, ip, device, True,
                  f"account takeover {k + 1}", "account_takeover")
    for k in range(5):  # impossible travel: home, then far away within the hour
        user = next(victims)
        place, ips, devices, hour_start = profiles[user]
        time = start + pd.Timedelta(days=int(rng.integers(8, 29)), hours=hour_start + 1)
        event(user, time, place, ips[0], devices[0], True)
        far = FOREIGN[(k + 2) % len(FOREIGN)]
        event(user, time + pd.Timedelta(minutes=int(rng.integers(15, 50))), far,
              f"{far[4]}.{rng.integers(1, 255)}.{rng.integers(2, 250)}", devices[0], True,
              f"impossible travel {k + 1}", "impossible_travel")
    for k in range(3):  # brute force: one account, many failures from one address
        user = next(victims)
        place = FOREIGN[(k + 1) % len(FOREIGN)]
        ip = f"{place[4]}.{rng.integers(1, 255)}.{rng.integers(2, 250)}"
        time = start + pd.Timedelta(days=int(rng.integers(8, 29)), hours=float(rng.uniform(0, 24)))
        for j in range(int(rng.integers(20, 35))):
            event(user, time + pd.Timedelta(seconds=50 * j), place, ip, ATTACK_DEVICES[0],
                  False, f"brute force {k + 1}", "brute_force")
    for k in range(2):  # password spray: one address, one try at many accounts
        place = FOREIGN[(k + 3) % len(FOREIGN)]
        ip = f"{place[4]}.{rng.integers(1, 255)}.{rng.integers(2, 250)}"
        time = start + pd.Timedelta(days=int(rng.integers(8, 29)), hours=float(rng.uniform(0, 24)))
        for j, user in enumerate(rng.choice(names, size=30, replace=False)):
            event(user, time + pd.Timedelta(seconds=70 * j), place, ip, ATTACK_DEVICES[1],
                  False, f"password spray {k + 1}", "password_spray")


def logins(rng: np.random.Generator, users: int = 200, days: int = 30,
           start: pd.Timestamp = START, attacks: bool = True):
    """Workday logins; takeovers, impossible travel, brute force and password spray
    (none with ``attacks=False``)."""
    names = [f"user{i:03d}" for i in range(users)]
    events: list[dict] = []

    def event(user, time, place, ip, device, success, incident=None, pattern=None):
        country, city, lat, lon, _ = place
        events.append({"timestamp": time, "user": user, "ip_address": ip, "country": country,
                       "city": city, "latitude": lat, "longitude": lon, "device": device,
                       "success": success, "_pattern": pattern, "_incident": incident})

    profiles = {}
    for user in names:
        place = PLACES[rng.integers(len(PLACES))]
        ips = [f"{place[4]}.{rng.integers(1, 255)}.{rng.integers(2, 250)}" for _ in range(2)]
        devices = list(rng.choice(DEVICES, size=rng.integers(1, 3), replace=False))
        first_hour = rng.uniform(7, 10)
        profiles[user] = (place, ips, devices, first_hour)
        for day in range(days):
            date = start + pd.Timedelta(days=day)
            weekend = date.day_of_week >= 5
            count = rng.poisson(0.3 if weekend else 2.2)
            for _ in range(count):
                hour = first_hour + rng.uniform(0, 9)
                time = date + pd.Timedelta(hours=hour)
                ip = ips[rng.integers(len(ips))]
                device = devices[rng.integers(len(devices))]
                if rng.random() < 0.03:  # a typo first
                    event(user, time - pd.Timedelta(seconds=40), place, ip, device, False)
                event(user, time, place, ip, device, True)
    # Legitimate trips: a new city now and then, the only login of that day (a home login
    # the same day would be a journey of 1,000-2,800 km/h).
    for user in rng.choice(names, size=6, replace=False):
        place, ips, devices, hour_start = profiles[user]
        trip = PLACES[(PLACES.index(place) + 3) % len(PLACES)]
        day = start + pd.Timedelta(days=int(rng.integers(10, 25)), hours=hour_start + 2)
        events[:] = [e for e in events
                     if not (e["user"] == user and e["timestamp"].normalize() == day.normalize())]
        event(user, day, trip, f"{trip[4]}.7.{rng.integers(2, 250)}", devices[0], True)
    if attacks:
        _attacks(rng, names, profiles, start, event)

    return _labelled(pd.DataFrame(events))


def _labelled(events: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Events in time order as a file holds them, and the labels of those with a
    ``_pattern``."""
    frame = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    labelled = frame["_pattern"].notna()
    labels = [(i + 1, p, n) for i, p, n in zip(frame.index[labelled], frame.loc[labelled, "_pattern"],
                                               frame.loc[labelled, "_incident"], strict=True)]
    return frame.drop(columns=["_pattern", "_incident"]), labels


UNSEEN = [  # places none of the generated users ever logs in from
    ("Iceland", "Reykjavik", 64.15, -21.94, "157.157"),
    ("Portugal", "Lisbon", 38.72, -9.14, "85.240"), ("Chile", "Santiago", -33.45, -70.67, "200.27"),
    ("Japan", "Tokyo", 35.68, 139.69, "126.72"), ("Kenya", "Nairobi", -1.29, 36.82, "41.90"),
    ("Canada", "Toronto", 43.65, -79.38, "142.112"),
]
NUMBER_CASES = {"slow_link": 7, "bulk_download": 7, "unseen_country": 6}


def login_numbers(rng: np.random.Generator, users: int = 200, days: int = 60,
                  cases_from: int = 30) -> tuple[pd.DataFrame, list]:
    """Logins with each user's latency, response time and bytes, plus 20 injected
    logins from day ``cases_from`` on, each a copy of one of the user's own logins a few
    minutes later: a latency 8-15 times the user's usual, a download 20-50 times the
    user's usual, or a login from a country no one uses (:data:`NUMBER_CASES`)."""
    frame, _ = logins(rng, users, days, attacks=False)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    names = sorted(frame["user"].unique())
    usual = pd.DataFrame({"latency_ms": rng.lognormal(np.log(20), 0.6, len(names)),
                          "response_ms": rng.lognormal(np.log(150), 0.4, len(names)),
                          "bytes": rng.lognormal(np.log(50_000), 0.8, len(names))},
                         index=names)
    n = len(frame)
    typical = usual.loc[frame["user"]].to_numpy()
    noise = rng.lognormal(0, [0.25, 0.3, 0.5], size=(n, 3))
    frame[list(usual.columns)] = typical * noise
    frame["_pattern"], frame["_incident"] = None, None
    later = frame[pd.to_datetime(frame["timestamp"]) >= START + pd.Timedelta(days=cases_from)]
    picks = later[later["success"]].sample(sum(NUMBER_CASES.values()), random_state=rng)
    cases = []
    kinds = [k for k, count in NUMBER_CASES.items() for _ in range(count)]
    for k, (kind, (_, row)) in enumerate(zip(kinds, picks.iterrows(), strict=True)):
        row = row.copy()
        row["timestamp"] += pd.Timedelta(minutes=int(rng.integers(3, 30)))
        mine = usual.loc[row["user"]]
        if kind == "slow_link":
            row["latency_ms"] = mine["latency_ms"] * rng.uniform(8, 15)
        elif kind == "bulk_download":
            row["bytes"] = mine["bytes"] * rng.uniform(20, 50)
        else:
            country, city, lat, lon, prefix = UNSEEN[k % len(UNSEEN)]
            row[["country", "city", "latitude", "longitude", "ip_address"]] = [
                country, city, lat, lon, f"{prefix}.{rng.integers(1, 255)}.{rng.integers(2, 250)}"]
        row["_pattern"], row["_incident"] = kind, f"{kind.replace('_', ' ')} {k + 1}"
        cases.append(row)
    frame = pd.concat([frame, pd.DataFrame(cases)], ignore_index=True)
    return _labelled(frame.round({"latency_ms": 1, "response_ms": 1, "bytes": 0}))


def generate(out: Path = SAMPLE_DIR, seed: int = 7) -> list[Path]:
    """Write every sample and its labels to ``out``; return the sample paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for offset, (name, make) in enumerate(
            [("elevators.csv", elevators), ("temperature.csv", temperature),
             ("logins.csv", logins)]):
        frame, labels = make(np.random.default_rng(seed + offset))
        _write(out, name, frame, labels)
        written.append(out / name)
    return written


if __name__ == "__main__":
    for path in generate():
        print(path)
