"""Activity records of personal carbon accounts: validate a file, compute each account's batch totals.

A platform collects its users' activity (trips, metered electricity, declined bags) off chain and, per batch,
turns it into each account's emissions and reductions with a registered methodology version
(:mod:`carbon_sdk.methodology`); the amounts then go into one Merkle root (:mod:`carbon_sdk.credits`).

CSV (header required, one record per row, extra columns ignored)::

    account,activity,quantity,unit,region,time
    0x5B38Da6a701c568545dCfcB03FcB875f56beddC4,metro,12.5,km,31,2025-03-03T08:15:00Z
    0x5B38Da6a701c568545dCfcB03FcB875f56beddC4,electricity,7.31,kWh,31,2025-03-03T23:00:00Z

or JSON Lines, one object per line with the same keys (``quantity`` a JSON number or text, ``region`` a number
or text, ``time`` text or unix seconds)::

    {"account": "0x5B38...", "activity": "avoided_bag", "quantity": 2, "unit": "item", "region": 44,
     "time": "2025-03-04T18:02:11Z"}

``account`` is an address (any case; a mixed-case one must carry a valid checksum), ``activity`` and ``unit``
must be one of the methodology's activities and that activity's unit, ``quantity`` a non-negative decimal with
at most 6 places (whole for items), ``region`` one of the methodology's region codes, ``time`` ISO 8601 (UTC
unless a zone is given) or unix seconds, inside the batch's period when one is given.

Every record is checked; a file with any bad record is rejected whole, and the error
(:class:`ActivityFileError`) names every bad line, its number and what is wrong with it (the message shows
the first 50, ``problems`` holds them all). Nothing is ever half-applied: totals exist only for a clean file.

Arithmetic: quantities are summed exactly (as integers of millionths) per account, activity and region; each
sum is multiplied by the methodology's per-unit factors in exact decimal arithmetic; each account's emissions
and reductions for the batch are then rounded once to whole grams by the methodology's rule (version 1:
emissions up, reductions down), and the batch totals are the sums of the rounded account totals, so they
always equal what the account entries add up to. No floats anywhere.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import time as _time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

from eth_utils import is_address, keccak, to_checksum_address

from carbon_sdk.errors import InvalidInput
from carbon_sdk.methodology import EXACT, Methodology, parse_quantity
from carbon_sdk.readings import parse_time

COLUMNS = ("account", "activity", "quantity", "unit", "region", "time")
SHOWN_PROBLEMS = 50
MICRO = 10**6  # quantities are summed as integers of millionths (6 decimals)
_SCALE = {1: 100_000, 2: 10_000, 3: 1_000, 4: 100, 5: 10, 6: 1}
_QUANTITY = re.compile(r"(?:0|[1-9][0-9]{0,11})(?:\.([0-9]{1,6}))?\Z")
_UNIX = re.compile(r"[0-9]{1,12}\Z")
_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:\Z")  # "2025-03-03T08:15:"


class ActivityRecord(NamedTuple):
    account: str  # checksummed address
    activity: str
    quantity: Decimal
    unit: str
    region: int
    time: int  # unix seconds


@dataclass(frozen=True)
class AccountTotals:
    account: str
    emissions: int  # grams CO2e, whole (rounded once by the methodology's rule)
    reductions: int  # grams CO2e, whole
    records: int


@dataclass(frozen=True)
class BatchTotals:
    """Each account's emissions and reductions for a batch, and the batch's, under one methodology version."""

    methodology_version: int
    methodology_hash: bytes
    accounts: Mapping[str, AccountTotals]  # by checksummed address, in address order
    emissions: int  # sum of the accounts' (rounded) emissions
    reductions: int
    records: int

    def __getitem__(self, account: str) -> AccountTotals:
        try:
            return self.accounts[to_checksum_address(account) if is_address(account) else account]
        except KeyError:
            raise KeyError(f"account {account} has no records in this batch") from None

    def __len__(self) -> int:
        return len(self.accounts)


class ActivityFileError(InvalidInput):
    """An activity file was rejected whole; ``problems`` lists every bad line as (line number, what is wrong)."""

    def __init__(self, source: str, problems: Sequence[tuple[int, str]], records: int):
        self.source = source
        self.problems = tuple(problems)
        self.records = records  # how many records the file held, good and bad
        shown = "\n".join(f"{source}, line {line}: {text}" for line, text in self.problems[:SHOWN_PROBLEMS])
        more = len(self.problems) - SHOWN_PROBLEMS
        super().__init__(f"{len(self.problems)} invalid activity record(s) of {records}; nothing was ingested:\n"
                         f"{shown}" + (f"\n... and {more} more (see .problems)" if more > 0 else ""))

    @property
    def lines(self) -> tuple[int, ...]:
        return tuple(line for line, _ in self.problems)


# -- reading and totals ------------------------------------------------------------------------------------


def load_activities(source: str | Path, methodology: Methodology, *, known_accounts: Iterable[str] | None = None,
                    period: tuple[Any, Any] | None = None, format: str | None = None) -> list[ActivityRecord]:
    """Read and validate an activity file (CSV or JSON Lines) into records; see the module's docstring."""
    ingest = _Ingest(methodology, known_accounts, period, keep=True)
    _feed_file(ingest, Path(source), format)
    return ingest.records


def batch_totals(source: str | Path | Iterable[ActivityRecord | Mapping[str, Any]], methodology: Methodology, *,
                 known_accounts: Iterable[str] | None = None, period: tuple[Any, Any] | None = None,
                 format: str | None = None) -> BatchTotals:
    """Validate every record and compute each account's emissions and reductions for the batch.

    ``source`` is a file (CSV or JSON Lines, streamed: a million records need no more memory than their
    accounts' sums) or an iterable of records (``ActivityRecord`` or mappings with the file's keys, numbered
    from 1 in error messages). ``known_accounts``: when given, a record of any other account is an error.
    ``period``: (start, end) as ISO 8601 or unix seconds, start included, end excluded; a record outside it is
    an error.
    """
    ingest = _Ingest(methodology, known_accounts, period, keep=False)
    if isinstance(source, (str, Path)):
        _feed_file(ingest, Path(source), format)
    else:
        for line, record in enumerate(source, start=1):
            ingest.record(line, _fields_of(record))
        ingest.finish("records")
    return ingest.totals()


def _fields_of(record: Any) -> list[Any]:
    if isinstance(record, ActivityRecord):
        return [record.account, record.activity, record.quantity, record.unit, record.region, record.time]
    if isinstance(record, Mapping):
        return [record.get(column) for column in COLUMNS]
    return [None] * len(COLUMNS)


def _feed_file(ingest: "_Ingest", path: Path, format: str | None) -> None:
    kind = (format or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix.lower(), "")).lower()
    if kind not in ("csv", "jsonl"):
        raise InvalidInput(f"{path}: say format='csv' or 'jsonl' (the suffix {path.suffix!r} does not tell)")
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            if kind == "csv":
                _feed_csv(ingest, handle, str(path))
            else:
                _feed_jsonl(ingest, handle)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path} is not UTF-8 text: {exc}") from None
    ingest.finish(str(path))


def _feed_csv(ingest: "_Ingest", handle: io.TextIOBase, source: str) -> None:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip().lower() for name in header]
    absent = [c for c in COLUMNS if c not in names]
    if absent:
        raise InvalidInput(f"{source}: the header lacks {', '.join(absent)} (expected {','.join(COLUMNS)})")
    index = [names.index(c) for c in COLUMNS]
    width = len(header)
    fast = ingest.fast
    if index == list(range(len(COLUMNS))) and width == len(COLUMNS):
        for row in reader:
            if len(row) == 6:
                fast(reader.line_num, row[0], row[1], row[2], row[3], row[4], row[5])
            elif row:
                ingest.problem(reader.line_num, [f"has {len(row)} fields, the header has {width}"])
        return
    a, b, c, d, e, f = index
    for row in reader:
        if len(row) == width:
            fast(reader.line_num, row[a], row[b], row[c], row[d], row[e], row[f])
        elif row:
            ingest.problem(reader.line_num, [f"has {len(row)} fields, the header has {width}"])


def _feed_jsonl(ingest: "_Ingest", handle: io.TextIOBase) -> None:
    # Scalars stay text (parse_float/parse_int=str): quantities keep their exact digits and every field
    # reaches the same checks as a CSV field. The scanner is the decoder's own; a line it cannot read, or with
    # anything after the object, is read again by decode() for the error message.
    decoder = json.JSONDecoder(parse_float=str, parse_int=str)
    scan, fast, record = decoder.scan_once, ingest.fast, ingest.record
    for line, text in enumerate(handle, start=1):
        try:
            if text[:1] != "{":
                raise ValueError
            obj, end = scan(text, 0)
            if end != len(text) and text[end:].strip():
                raise ValueError
        except (ValueError, StopIteration):
            if not text.strip():
                continue
            try:
                obj = decoder.decode(text)
            except ValueError as exc:
                ingest.problem(line, [f"not a JSON object ({exc.args[0] if exc.args else exc})"])
                continue
        if type(obj) is not dict:
            ingest.problem(line, [f"not a JSON object but {type(obj).__name__}"])
            continue
        get = obj.get
        a, b, c, d, e, f = get("account"), get("activity"), get("quantity"), get("unit"), get("region"), get("time")
        if str is type(a) is type(b) is type(c) is type(d) is type(e) is type(f):
            fast(line, a, b, c, d, e, f)
        else:
            record(line, [a, b, c, d, e, f])


class _Ingest:
    """Validates records one at a time and keeps only what the totals need (or the records, for loading).

    Each account has one accumulator: a list of integer sums of millionths, one slot per (activity, region),
    then the account's checksummed address and the number of its records. The fast path handles six
    well-formed text fields with a handful of dict lookups; anything unusual (the first sight of an account,
    odd spacing or case, any error) goes to :meth:`record`, which checks everything and names every problem.
    """

    def __init__(self, methodology: Methodology, known_accounts: Iterable[str] | None, period: tuple[Any, Any] | None,
                 keep: bool):
        self.methodology = methodology
        self.names = methodology.activities
        self.codes = tuple(methodology.regions)
        self.units = {name: methodology.unit(name) for name in self.names}
        self.width = len(self.names) * len(self.codes)
        self.slot_of = {(name, code): a * len(self.codes) + r
                        for a, name in enumerate(self.names) for r, code in enumerate(self.codes)}
        self.known = None if known_accounts is None else _known(known_accounts)
        self.start, self.end = _period(period)
        self.by_account: dict[str, list] = {}  # checksummed address -> accumulator
        self.raw_accounts: dict[str, list] = {}  # the address as written -> the same accumulator
        self.problems: list[tuple[int, str]] = []  # one per bad record
        self.keep = keep
        self.records: list[ActivityRecord] = []
        self.fast = self._fast_path()

    def _fast_path(self) -> Callable[[int, str, str, str, str, str, str], None]:
        accounts = self.raw_accounts
        n_codes = len(self.codes)
        activities = {name: (unit, a * n_codes, unit == "item") for a, (name, unit) in enumerate(self.units.items())}
        regions = {str(code): (code, r) for r, code in enumerate(self.codes)}
        minutes: dict[str, int] = {}  # "2025-03-03T08:15:" -> unix seconds of that minute
        start, end, keep, records, slow = self.start, self.end, self.keep, self.records, self.record
        match_quantity, unix, minute, scale = _QUANTITY.match, _UNIX.match, _MINUTE.match, _SCALE
        iso, utc = datetime.fromisoformat, timezone.utc

        def fast(line: int, account: str, activity: str, quantity: str, unit: str, region: str, time: str) -> None:
            acc = accounts.get(account)
            spec = activities.get(activity)
            reg = regions.get(region)
            if acc is None or spec is None or reg is None or unit != spec[0]:
                return slow(line, [account, activity, quantity, unit, region, time])
            m = match_quantity(quantity)
            if m is None:
                return slow(line, [account, activity, quantity, unit, region, time])
            fraction = m.group(1)
            if fraction is not None and spec[2]:  # items are whole
                return slow(line, [account, activity, quantity, unit, region, time])
            # time: "YYYY-MM-DDTHH:MM:SSZ" through a per-minute cache; any other form through fromisoformat
            whole_seconds = len(time) == 20 and time[19] == "Z"
            seconds = time[17:19]
            base = minutes.get(time[:17]) if whole_seconds else None
            if base is not None and "00" <= seconds < "60" and seconds.isdigit() and seconds.isascii():
                moment = base + int(seconds)
            elif whole_seconds and minute(time[:17]) and "00" <= seconds < "60" and unix(seconds):
                try:
                    base = int(iso(time[:16]).replace(tzinfo=utc).timestamp())
                except (ValueError, OverflowError, OSError):
                    return slow(line, [account, activity, quantity, unit, region, time])
                minutes[time[:17]] = base
                moment = base + int(seconds)
            elif unix(time):
                moment = int(time)
            else:
                try:
                    parsed = iso(time)
                    moment = int((parsed if parsed.tzinfo else parsed.replace(tzinfo=utc)).timestamp())
                except (ValueError, OverflowError, OSError):
                    return slow(line, [account, activity, quantity, unit, region, time])
            if not start <= moment < end:
                return slow(line, [account, activity, quantity, unit, region, time])
            if fraction is None:
                micro = int(quantity) * 1_000_000
            else:
                micro = int(quantity[:m.start(1) - 1]) * 1_000_000 + int(fraction) * scale[len(fraction)]
            acc[spec[1] + reg[1]] += micro
            acc[-1] += 1
            if keep:
                records.append(ActivityRecord(acc[-2], activity, Decimal(quantity), unit, reg[0], moment))

        return fast

    def record(self, line: int, values: list[Any]) -> None:
        """Validate one record thoroughly (normalising case and blanks), naming every problem it has."""
        account, activity, quantity, unit, region, moment = values
        issues: list[str] = []
        missing = [c for c, v in zip(COLUMNS, values) if v is None or (isinstance(v, str) and not v.strip())]
        if missing:
            issues.append(f"missing {', '.join(missing)}")
        acct = name = code = t = amount = None
        if "account" not in missing:
            acct = self._account(account, issues)
        if "activity" not in missing:
            folded = activity.strip().lower() if isinstance(activity, str) else activity
            if folded in self.units:
                name = folded
            else:
                issues.append(f"unknown activity {activity!r} (known: {', '.join(self.units)})")
        if name is not None and "unit" not in missing:
            expected = self.units[name]
            if not (isinstance(unit, str) and unit.strip().lower() == expected.lower()):
                issues.append(f"unit {unit!r} is not valid for {name} (expected {expected})")
        if "quantity" not in missing:
            try:
                amount = parse_quantity(quantity, self.units.get(name, ""))
            except ValueError as exc:
                issues.append(str(exc))
        if "region" not in missing:
            code = self._region(region, issues)
        if "time" not in missing:
            t = self._time(moment, issues)
        if issues:
            self.problems.append((line, "; ".join(issues)))
            return
        acc = self.by_account[acct]
        acc[self.slot_of[(name, code)]] += int(amount.scaleb(6))
        acc[-1] += 1
        if self.keep:
            self.records.append(ActivityRecord(acct, name, amount, self.units[name], code, t))

    def problem(self, line: int, issues: list[str]) -> None:
        self.problems.append((line, "; ".join(issues)))

    def _account(self, account: Any, issues: list[str]) -> str | None:
        if not isinstance(account, str):
            issues.append(f"account {account!r} is not an address")
            return None
        text = account.strip()
        if not _HEX_ADDRESS.match(text):
            issues.append(f"account {account!r} is not an address (0x and 40 hex digits)")
            return None
        acct = _checksum(text)
        digits = text[2:]
        if digits != digits.lower() and digits != digits.upper() and text != acct:
            issues.append(f"account {account!r} has mixed case that is not its checksum ({acct})")
            return None
        if self.known is not None and acct not in self.known:
            issues.append(f"account {acct} is not a known account of this platform")
            return None
        acc = self.by_account.get(acct)
        if acc is None:
            acc = self.by_account[acct] = [0] * self.width + [acct, 0]
        self.raw_accounts[account] = acc  # later records written the same way take the fast path
        return acct

    def _region(self, region: Any, issues: list[str]) -> int | None:
        text = str(region).strip() if isinstance(region, (str, int)) and not isinstance(region, bool) else None
        if text is not None and text.isascii() and text.isdigit() and int(text) in self.methodology.regions:
            return int(text)
        known = ", ".join(str(c) for c in self.codes)
        issues.append(f"region {region!r} is not a region of methodology {self.methodology.version} ({known})")
        return None

    def _time(self, moment: Any, issues: list[str]) -> int | None:
        if isinstance(moment, bool) or not isinstance(moment, (str, int)):
            issues.append(f"time {moment!r} is neither ISO 8601 nor unix seconds")
            return None
        try:
            t = parse_time(str(moment))
        except ValueError as exc:
            issues.append(str(exc))
            return None
        except (OverflowError, OSError):
            issues.append(f"time {moment!r} is out of range")
            return None
        if not 0 <= t < 2**64:
            issues.append(f"time {moment!r} is out of range")
            return None
        if not self.start <= t < self.end:
            issues.append(f"time {moment!r} is outside the batch period ({_iso(self.start)} to {_iso(self.end)})")
            return None
        return t

    @property
    def seen(self) -> int:
        """Records read so far: every good one is counted in its account, every bad one has one problem."""
        return sum(acc[-1] for acc in self.by_account.values()) + len(self.problems)

    def finish(self, source: str) -> None:
        if self.problems:
            raise ActivityFileError(source, self.problems, self.seen)
        if not self.seen:
            raise InvalidInput(f"{source} holds no activity records")

    def totals(self) -> BatchTotals:
        m = self.methodology
        per_unit = m.per_unit()
        factors = [per_unit[(name, code)] for name in self.names for code in self.codes]
        zero = Decimal(0)
        accounts: dict[str, AccountTotals] = {}
        total_e = total_r = 0
        seen = self.seen
        for acct in sorted(self.by_account):
            acc = self.by_account[acct]
            emissions = reductions = zero
            for slot in range(self.width):
                micro = acc[slot]
                if micro:
                    e, r = factors[slot]
                    if e:
                        emissions = EXACT.add(emissions, EXACT.multiply(Decimal(micro), e))
                    if r:
                        reductions = EXACT.add(reductions, EXACT.multiply(Decimal(micro), r))
            e_grams = m.round_emissions(EXACT.scaleb(emissions, -6))
            r_grams = m.round_reductions(EXACT.scaleb(reductions, -6))
            accounts[acct] = AccountTotals(acct, e_grams, r_grams, acc[-1])
            total_e += e_grams
            total_r += r_grams
        return BatchTotals(m.version, m.content_hash, MappingProxyType(accounts), total_e, total_r, seen)


_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
_UPPER_NIBBLES = frozenset("89abcdef")


def _checksum(address: str) -> str:
    """EIP-55 checksum of ``0x`` + 40 hex digits (what ``to_checksum_address`` returns, in half the time)."""
    digits = address[2:].lower()
    hashed = keccak(text=digits).hex()
    return "0x" + "".join(c.upper() if n in _UPPER_NIBBLES else c for c, n in zip(digits, hashed))


def _known(accounts: Iterable[str]) -> frozenset[str]:
    out = set()
    for account in accounts:
        if not isinstance(account, str) or not is_address(account.strip()):
            raise InvalidInput(f"known account {account!r} is not a valid address")
        out.add(to_checksum_address(account.strip()))
    return frozenset(out)


def _period(period: tuple[Any, Any] | None) -> tuple[int, int]:
    if period is None:
        return 0, 2**64
    try:
        start, end = (parse_time(str(p)) for p in period)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"period {period!r}: {exc}") from None
    if not start < end:
        raise InvalidInput(f"period {period!r} must end after it starts")
    return start, end


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t < 2**40 else str(t)


# -- synthetic activity -------------------------------------------------------------------------------------

PROFILES = {
    # share of accounts, daily household kWh range, commute km range, mode weights, chance of declining bags
    "green": (0.30, (2.0, 6.0), (3.0, 15.0),
              {"metro": 45, "bus": 25, "cycling": 20, "walking": 5, "car": 5}, 0.9),
    "average": (0.45, (5.0, 11.0), (5.0, 20.0),
                {"metro": 30, "bus": 20, "cycling": 5, "walking": 5, "car": 40}, 0.4),
    "high_carbon": (0.25, (10.0, 25.0), (8.0, 35.0),
                    {"car": 85, "metro": 10, "bus": 5}, 0.05),
}
SYNTHETIC_REGIONS = ((11, 35), (31, 35), (44, 30))


@dataclass(frozen=True)
class SyntheticWeek:
    path: Path
    accounts: tuple[str, ...]
    profiles: Mapping[str, str]  # account -> profile name
    records: int
    period: tuple[int, int]  # unix seconds, start included, end excluded


def synthetic_accounts(count: int, seed: int = 0) -> list[str]:
    """``count`` deterministic addresses (not keys anyone holds), the same for the same seed."""
    return [to_checksum_address(keccak(f"carbon-sdk synthetic account {seed}/{i}".encode())[-20:])
            for i in range(count)]


def write_synthetic_week(path: str | Path, accounts: int | Sequence[str], *, seed: int = 0,
                         start: str | int = "2025-03-03T00:00:00Z", format: str | None = None) -> SyntheticWeek:
    """Write a week of plausible activity for ``accounts`` (a number, or the addresses) to a CSV or JSONL file.

    Seeded and deterministic. Each account gets a profile (green, average or high-carbon: how it commutes,
    how much electricity its household uses, whether it declines bags) and a home region (11, 31 or 44), then
    a record per day of household electricity, two commute trips per weekday, some errands and shopping.
    About 25 records per account on average: a million records is about 39,400 accounts.
    """
    path = Path(path)
    kind = (format or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix.lower(), "")).lower()
    if kind not in ("csv", "jsonl"):
        raise InvalidInput(f"{path}: say format='csv' or 'jsonl'")
    rng = random.Random(seed)
    addresses = synthetic_accounts(accounts, seed) if isinstance(accounts, int) else [
        to_checksum_address(a) for a in accounts]
    begin = parse_time(str(start))
    names = list(PROFILES)
    shares = [PROFILES[n][0] for n in names]
    regions = [r for r, _ in SYNTHETIC_REGIONS]
    region_weights = [w for _, w in SYNTHETIC_REGIONS]
    profiles: dict[str, str] = {}
    minutes = [_time.strftime("%Y-%m-%dT%H:%M:", _time.gmtime(begin + s)) for s in range(0, 7 * 86400, 60)]
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        if kind == "csv":
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            emit = writer.writerows
        else:
            def emit(rows: list[tuple]) -> None:
                handle.writelines(
                    f'{{"account":"{a}","activity":"{act}","quantity":{q},"unit":"{u}","region":{r},"time":"{t}"}}\n'
                    for a, act, q, u, r, t in rows)
        for address in addresses:
            profile = rng.choices(names, shares)[0]
            profiles[address] = profile
            rows = list(_week_of(rng, address, profile, rng.choices(regions, region_weights)[0], minutes))
            count += len(rows)
            emit(rows)
    return SyntheticWeek(path, tuple(addresses), MappingProxyType(profiles), count, (begin, begin + 7 * 86400))


def _week_of(rng: random.Random, account: str, profile: str, region: int, minutes: list[str]) -> Iterator[tuple]:
    _, kwh, commute, modes, bag_chance = PROFILES[profile]
    mode_names, mode_weights = list(modes), list(modes.values())
    home_km = rng.uniform(*commute)

    def at(day: int, first: int, last: int) -> str:
        """A moment of ``day`` between minutes ``first`` and ``last`` of it, to the second."""
        return f"{minutes[day * 1440 + rng.randrange(first, last)]}{rng.randrange(60):02d}Z"

    def trip(day: int, first: int, last: int, km: float) -> tuple:
        mode = rng.choices(mode_names, mode_weights)[0]
        if mode == "walking":
            km = min(km, rng.uniform(0.5, 3.0))
        elif mode == "cycling":
            km = min(km, rng.uniform(1.0, 10.0))
        return (account, mode, f"{max(km, 0.1):.1f}", "km", region, at(day, first, last))

    for day in range(7):
        yield (account, "electricity", f"{rng.uniform(*kwh):.2f}", "kWh", region, at(day, 22 * 60, 24 * 60))
        if day < 5:
            yield trip(day, 7 * 60, 9 * 60, home_km * rng.uniform(0.9, 1.1))
            yield trip(day, 17 * 60, 19 * 60 + 30, home_km * rng.uniform(0.9, 1.1))
        for _ in range(rng.randrange(0, 3)):
            yield trip(day, 9 * 60, 21 * 60, rng.uniform(1.0, 8.0))
        if rng.random() < 0.45 and rng.random() < bag_chance:
            yield (account, "avoided_bag", str(rng.randint(1, 3)), "item", region, at(day, 10 * 60, 21 * 60))
