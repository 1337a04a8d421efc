"""The Redis gate: a drop's hot state in Redis, decided by one Lua script per purchase.

Why: on the database path (``drops.flows.purchase``) a purchase costs tens of statements and
several transactions, and under a crowd the cost is those round trips and the Python per row,
not row locks. Here one EVALSHA per purchase decides, and the batch writer
(``drops.crowd.writer``) writes a few hundred orders in three transactions, so the per-order
cost falls to a small fraction of a statement. Figures: docs/benchmarks.md.

What one EVALSHA decides, atomically (Redis runs a script alone): expired holds pruned (their
units come back, so no sweeper is needed), the idempotency key (a replay gets the stored
outcome, a concurrent replay waits), the drop window (ended / not yet open for this shopper),
rate limits per identity and per IP, the admission token's single use, the per-person cap, and
the units left per pool; then it takes the units. Every purchase key it decides is stored with
its request's fingerprint and outcome in the same step, refusals included (a rate limit
excepted: it changes on retry), so a replay gets its first answer and the same key with another
body is a mismatch. Holds (the two-step path) live in a sorted set
by expiry in the same script, so both paths draw from one count.

Leases: a purchase's take is recorded as a lease (a sorted set by expiry, and the lease's units,
customer and admission token), and its key's pending record names the lease. A purchase that
dies before its order is written (a killed worker) leaves its lease to lapse: the next take,
or the drops job's sweep (``SWEEP_LEASES``), gives its units, the count and the admission back,
and a retry of its key then starts afresh with a lease of its own. Once the order is committed
the writer keeps the lease (``END_LEASES`` 'keep'), before the charge; a lease that lapsed
meanwhile (a slow batch) is taken again then, so Redis counts the order once. Every other end
of a purchase after the take ends its lease too: a refusal by PostgreSQL returns the units
(never twice, if the lease had lapsed), a failed write releases units and admission.

Redis is never the source of truth: every take is committed in PostgreSQL by a guarded statement
(``drops.crowd.writer``), which refuses what the database cannot give. So a lost or stale Redis can
make the gate admit too many (PostgreSQL refuses them: sold out, and Redis is corrected) or too
few (until a crashed purchase's lease lapses), never an oversell. ``reconcile`` rebuilds a
drop's keys from PostgreSQL, keeping the live leases whose orders are not written yet; the
gate also loads a drop lazily when its keys are missing (after a flush, a restart of Redis).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import NoScriptError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.db import Database
from dropline.drops import service
from dropline.drops.crowd.redis_pipe import Pipe, pack, raise_first_error
from dropline.drops.models import Drop, DropBuyer, DropHold, DropQueueEntry, DropSlot, HoldStatus
from dropline.orders.models import Order
from dropline.ratelimit import counter_name, identity_key, ip_key

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
RATE_WINDOW_SECONDS = 60  # the drop limits are per minute, as the routes count them
DEFAULT_PREFIX = "dl:"

# Shared by the scripts that end a lease: applies a lease's info to the counts, giving its
# units back (sign 1: units up, the buyer's count down and, with ``token``, the admission token
# unused again if it is still the last one used) or taking them again (sign -1).
LEASE_LIB = r"""
local function apply_lease(left, buyers, tokens, info, sign, token)
  local cust, n, before, pairs = string.match(info, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local total = 0
  for pool, q in string.gmatch(pairs, '(%-?%d+):(%d+)') do
    redis.call('HINCRBY', left, pool, sign * tonumber(q))
    total = total + tonumber(q)
  end
  redis.call('HINCRBY', buyers, cust, -sign * total)
  if token and tonumber(n) > 0 then
    local used = tonumber(redis.call('HGET', tokens, cust) or '0')
    if sign > 0 and used == tonumber(n) then
      if tonumber(before) > 0 then redis.call('HSET', tokens, cust, before)
      else redis.call('HDEL', tokens, cust) end
    elseif sign < 0 and used < tonumber(n) then
      redis.call('HSET', tokens, cust, n)
    end
  end
end
"""

# KEYS: 1 meta, 2 left, 3 buyers, 4 holds (zset member -> expiry ms), 5 hold info,
#       6 tokens used, 7 idempotency key, 8 rate key (identity), 9 rate key (ip),
#       10 leases (zset member -> expiry ms), 11 lease info
# ARGV: 1 now_ms, 2 customer, 3 lead_ms, 4 token n (0: none needed), 5 fingerprint,
#       6 idempotency ttl s, 7 hold member ('' for a purchase), 8 hold expiry ms,
#       9 identity limit, 10 ip limit (0: none), 11 rate window s, 12 lease member ('' for a
#       hold), 13 lease expiry ms, 14.. pool, qty pairs
# A lease's info: 'customer|token n|tokens used before|pool:q;pool:q', prefixed 'X' once
# reclaimed (so a late settle knows its units were given back and takes them again).
TAKE = LEASE_LIB + r"""
local now = tonumber(ARGV[1])
-- A purchase's refusal is stored under its key with its fingerprint, as its answer: a replay
-- gets the same refusal and the same key with another body is a mismatch (holds carry no key).
local function refuse(...)
  if ARGV[7] == '' and ARGV[5] ~= '' then
    redis.call('SET', KEYS[7], table.concat({'R', ARGV[5], ...}, '|'), 'EX', tonumber(ARGV[6]))
  end
  return {...}
end
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 200)
for _, m in ipairs(due) do
  local info = redis.call('HGET', KEYS[5], m)
  if info then
    local sep = string.find(info, '|', 1, true)
    local cust = string.sub(info, 1, sep - 1)
    local total = 0
    for pool, q in string.gmatch(string.sub(info, sep + 1), '(%-?%d+):(%d+)') do
      redis.call('HINCRBY', KEYS[2], pool, tonumber(q))
      total = total + tonumber(q)
    end
    redis.call('HINCRBY', KEYS[3], cust, -total)
    redis.call('HDEL', KEYS[5], m)
  end
  redis.call('ZREM', KEYS[4], m)
end
-- Lapsed leases: purchases that died between their take and their order's commit. Their
-- units, the buyer's count and the admission token come back; the info stays, marked.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', now, 'LIMIT', 0, 200)
for _, m in ipairs(lapsed) do
  local info = redis.call('HGET', KEYS[11], m)
  if info and string.sub(info, 1, 1) ~= 'X' then
    apply_lease(KEYS[2], KEYS[3], KEYS[6], info, 1, true)
    redis.call('HSET', KEYS[11], m, 'X' .. info)
  end
  redis.call('ZREM', KEYS[10], m)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local idem = redis.call('GET', KEYS[7])
if idem then
  local fp = string.match(idem, '^[PDR]|([^|]*)')
  if fp ~= ARGV[5] then return {'mismatch'} end
  -- Pending under a lease: while the lease lives, a replay (its expiry returned); once it
  -- was reclaimed, the first attempt died before its order: this one starts afresh.
  local lease = string.match(idem, '^P|[^|]*|(.+)$')
  if not lease then return {'replay', idem, ''} end
  local expires = redis.call('ZSCORE', KEYS[10], lease)
  if expires then return {'replay', idem, expires} end
  if string.sub(redis.call('HGET', KEYS[11], lease) or '', 1, 1) ~= 'X' then
    return {'replay', idem, ''}
  end
end
local meta = redis.call('HMGET', KEYS[1], 'starts', 'ends', 'limit')
local starts, ends, limit = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3])
if now >= ends then return refuse('ended') end
if now < starts - tonumber(ARGV[3]) then
  return refuse('notopen', tostring(starts - tonumber(ARGV[3])))
end
local window = tonumber(ARGV[11])
local limits = {{KEYS[8], tonumber(ARGV[9])}, {KEYS[9], tonumber(ARGV[10])}}
for _, l in ipairs(limits) do
  if l[2] > 0 then
    local c = redis.call('INCR', l[1])
    if c == 1 then redis.call('EXPIRE', l[1], window + 1) end
    if c > l[2] then return {'ratelimited', tostring(redis.call('TTL', l[1]))} end
  end
end
local cust = ARGV[2]
local n = tonumber(ARGV[4])
if n > 0 and tonumber(redis.call('HGET', KEYS[6], cust) or '0') >= n then return refuse('token_used') end
local total = 0
for i = 14, #ARGV, 2 do total = total + tonumber(ARGV[i + 1]) end
local already = tonumber(redis.call('HGET', KEYS[3], cust) or '0')
if already + total > limit then return refuse('limit', tostring(already), tostring(limit)) end
for i = 14, #ARGV, 2 do
  if tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0') < tonumber(ARGV[i + 1]) then
    return refuse('soldout')
  end
end
local parts = {}
for i = 14, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], -tonumber(ARGV[i + 1]))
  parts[#parts + 1] = ARGV[i] .. ':' .. ARGV[i + 1]
end
redis.call('HINCRBY', KEYS[3], cust, total)
local before = redis.call('HGET', KEYS[6], cust) or '0'
if n > 0 then redis.call('HSET', KEYS[6], cust, n) end
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[4], tonumber(ARGV[8]), ARGV[7])
  redis.call('HSET', KEYS[5], ARGV[7], cust .. '|' .. table.concat(parts, ';'))
elseif ARGV[12] ~= '' then
  redis.call('ZADD', KEYS[10], tonumber(ARGV[13]), ARGV[12])
  redis.call('HSET', KEYS[11], ARGV[12],
             table.concat({cust, tostring(n), before, table.concat(parts, ';')}, '|'))
  redis.call('SET', KEYS[7], 'P|' .. ARGV[5] .. '|' .. ARGV[12], 'EX', tonumber(ARGV[6]))
else
  redis.call('SET', KEYS[7], 'P|' .. ARGV[5], 'EX', tonumber(ARGV[6]))
end
return {'ok'}
"""

# KEYS: 1 left, 2 buyers, 3 tokens, 4 leases, 5 lease info, 6 idempotency key (may be a
# dummy); ARGV: 1 how ('keep': the order is committed, its units stay taken; 'return': the
# purchase was refused after the gate (or its key already has an order), its units come back
# and its admission token stays used, as the database path's refusals leave it; 'release': no
# order was written (the writer failed), units and admission come back, as at a lapse;
# 'drop': the lease just ends, the caller rebuilds the keys), 2 forget the key (1/0), 3..
# lease members. Ends leases once: a lease already reclaimed (lapsed) gave its units back
# then, so 'keep' takes them again and 'return' does not give them twice.
END_LEASES = LEASE_LIB + r"""
local taken_again = 0
for i = 3, #ARGV do
  local m = ARGV[i]
  local live = redis.call('ZREM', KEYS[4], m) == 1
  local info = redis.call('HGET', KEYS[5], m)
  if info then
    redis.call('HDEL', KEYS[5], m)
    local reclaimed = string.sub(info, 1, 1) == 'X'
    if reclaimed then info = string.sub(info, 2) end
    if ARGV[1] == 'keep' and reclaimed then
      apply_lease(KEYS[1], KEYS[2], KEYS[3], info, -1, true)
      taken_again = taken_again + 1
    elseif (ARGV[1] == 'return' or ARGV[1] == 'release') and live then
      apply_lease(KEYS[1], KEYS[2], KEYS[3], info, 1, ARGV[1] == 'release')
    end
  end
end
if ARGV[2] == '1' then redis.call('DEL', KEYS[6]) end
return taken_again
"""

# KEYS: 1 left, 2 buyers, 3 idempotency key (may be a dummy); ARGV: 1 customer,
# 2 forget key (1/0), 3.. pool, qty pairs. Gives units back (a refusal by PostgreSQL, a
# declined card, a released hold).
GIVE_BACK = r"""
local total = 0
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], tonumber(ARGV[i + 1]))
  total = total + tonumber(ARGV[i + 1])
end
if total > 0 then redis.call('HINCRBY', KEYS[2], ARGV[1], -total) end
if ARGV[2] == '1' then redis.call('DEL', KEYS[3]) end
return total
"""

# KEYS: 1 left, 2 buyers, 3 tokens, 4 leases, 5 lease info; ARGV: 1 now_ms. The take's
# reclaim of lapsed leases alone, for the drops job: units come back without a next shopper.
SWEEP_LEASES = LEASE_LIB + r"""
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[1]), 'LIMIT', 0, 1000)
for _, m in ipairs(lapsed) do
  local info = redis.call('HGET', KEYS[5], m)
  if info and string.sub(info, 1, 1) ~= 'X' then
    apply_lease(KEYS[1], KEYS[2], KEYS[3], info, 1, true)
    redis.call('HSET', KEYS[5], m, 'X' .. info)
  end
  redis.call('ZREM', KEYS[4], m)
end
return #lapsed
"""

# KEYS: 1 idempotency key; ARGV: 1 record, 2 ttl s. Stores a refusal decided before the
# script (a bad admission token) unless the key has a record: then returns that record.
RECORD_FIRST = r"""
local idem = redis.call('GET', KEYS[1])
if idem then return idem end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return false
"""

# KEYS: 1 holds, 2 hold info; ARGV: 1 member. The hold's units become sold (they stay taken).
CONVERT = r"""
local had = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return had
"""


@dataclass(frozen=True)
class Verdict:
    """What the script decided: ``ok``, ``replay`` (the idempotency record, then the expiry
    of the pending attempt's live lease in ms, or '' if none),
    ``mismatch``, ``ended``, ``notopen`` (``opens_ms``), ``ratelimited`` (``retry_after``),
    ``token_used``, ``limit`` (``already``/``limit``), ``soldout`` or ``missing``."""

    outcome: str
    values: tuple[str, ...] = ()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _verdict(raw: list[Any]) -> Verdict:
    """The script's reply: the outcome, then its values."""
    return Verdict(_text(raw[0]), tuple(_text(v) for v in raw[1:]))


class DropKeys:
    def __init__(self, prefix: str, drop_id: int) -> None:
        base = f"{prefix}d:{drop_id}:"
        self.meta, self.left, self.buyers = base + "meta", base + "left", base + "buyers"
        self.holds, self.hold_info, self.tokens = base + "holds", base + "holdinfo", base + "tok"
        self.leases, self.lease_info = base + "leases", base + "leaseinfo"
        self.prefix, self.base = prefix, base

    def idem(self, reference: str) -> str:
        return f"{self.base}i:{reference}"

    def all(self) -> list[str]:
        return [self.meta, self.left, self.buyers, self.holds, self.hold_info, self.tokens,
                self.leases, self.lease_info]

    def for_leases(self, reference: str | None = None) -> list[str]:
        """The keys ``END_LEASES`` takes (the idempotency key a dummy without ``reference``)."""
        return [self.left, self.buyers, self.tokens, self.leases, self.lease_info,
                self.idem(reference or "-")]


def stored_outcome(stored: str) -> tuple[int, str] | Verdict | None:
    """A key's record as its answer: ``D|fp|status|body`` -> (status, body as JSON text);
    ``R|fp|outcome|values..`` (a refusal the script decided) -> its ``Verdict``, which the
    caller words as it words a fresh one; ``P|fp`` -> None (the first attempt is pending)."""
    if stored.startswith("R|"):
        _, _, outcome, *values = stored.split("|")
        return Verdict(outcome, tuple(values))
    if not stored.startswith("D|"):
        return None
    _, _, status, body = stored.split("|", 3)
    return int(status), body


def fingerprint_of(stored: str) -> str:
    """The fingerprint of the request that made a key's record."""
    return stored.split("|", 2)[1]


def _pairs(quantities: Mapping[int, int]) -> list[str]:
    return [str(part) for pool, q in sorted(quantities.items()) for part in (pool, q)]


@dataclass(frozen=True)
class TakeRequest:
    drop_id: int
    customer_id: int
    quantities: Mapping[int, int]  # pool -> units
    now_ms: int
    reference: str = ""
    fingerprint: str = ""
    token_n: int = 0
    lead_ms: int = 0
    hold_member: str = ""
    hold_expires_ms: int = 0
    identity_limit: int = 0
    ip: str = ""
    ip_limit: int = 0
    lease_member: str = ""  # a purchase's lease (``lease_member``); holds carry none
    lease_expires_ms: int = 0


def lease_member(reference: str, attempt: str) -> str:
    """A purchase attempt's lease: its key's reference and the attempt (a retry of the same
    key after a reclaim takes a lease of its own, so a late settle of the first attempt's
    lease can never end the retry's)."""
    return f"{reference}#{attempt}"


def reference_of(member: str) -> str:
    return member.rsplit("#", 1)[0]

class RedisGate:
    """Async (the web hot path) over ``redis.asyncio``; ``SyncGate`` below serves the CLI, the
    jobs and the sync hold flows. Both run the same scripts on the same keys."""

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        pool = getattr(client, "connection_pool", None)
        # The async client over TCP or a Unix socket (not TLS): its batches take the pipe.
        plain = pool is not None and pool.connection_class.__module__.startswith(
            "redis.asyncio") and pool.connection_class.__name__ in (
            "Connection", "UnixDomainSocketConnection")
        self._pipe = Pipe(pool.connection_kwargs) if plain else None
        self._take = client.register_script(TAKE)
        self._give_back = client.register_script(GIVE_BACK)
        self._convert = client.register_script(CONVERT)
        self._record_first = client.register_script(RECORD_FIRST)
        self._end_leases = client.register_script(END_LEASES)
        self._sweep_leases = client.register_script(SWEEP_LEASES)

    def keys(self, drop_id: int) -> DropKeys:
        return DropKeys(self.prefix, drop_id)

    def _take_args(self, r: TakeRequest) -> tuple[list[str], list[Any]]:
        k = self.keys(r.drop_id)
        window = r.now_ms // (RATE_WINDOW_SECONDS * 1000)
        # The app's rate-limit counters (dropline.ratelimit), counted inside the script.
        keys = [k.meta, k.left, k.buyers, k.holds, k.hold_info, k.tokens,
                k.idem(r.reference or "-"),
                counter_name(self.prefix, identity_key(r.customer_id), window),
                counter_name(self.prefix, ip_key(r.ip), window), k.leases, k.lease_info]
        args = [r.now_ms, r.customer_id, r.lead_ms, r.token_n, r.fingerprint,
                IDEMPOTENCY_TTL_SECONDS, r.hold_member, r.hold_expires_ms, r.identity_limit,
                r.ip_limit if r.ip else 0, RATE_WINDOW_SECONDS, r.lease_member,
                r.lease_expires_ms, *_pairs(r.quantities)]
        return keys, args

    async def take_many(self, requests: list[TakeRequest]) -> list[Verdict]:
        """The script once per request, all in one pipeline (one round trip; Redis still runs
        each script alone, in order). What the hot path's coalescer calls. EVALSHA is sent
        as it is (no SCRIPT EXISTS round trip first); if Redis lost the script (a restart),
        every EVALSHA of the pipeline failed without running, so the script is loaded and
        the pipeline sent once more."""
        sha = self._take.sha.encode()
        commands = []
        for request in requests:
            keys, args = self._take_args(request)
            commands.append([b"EVALSHA", sha, b"%d" % len(keys), *keys, *args])
        try:
            replies = await self._send_all(commands)
        except NoScriptError:
            await self.client.script_load(TAKE)
            replies = await self._send_all(commands)
        return [_verdict(raw) for raw in replies]

    async def complete_many(self, records: list[tuple[int, str, str, int, str]]) -> None:
        """Stores many outcomes at once: (drop, reference, fingerprint, status, body JSON)."""
        await self._send_all([
            [b"SET", self.keys(drop_id).idem(reference),
             f"D|{fingerprint}|{status}|{body}", b"EX", b"%d" % IDEMPOTENCY_TTL_SECONDS]
            for drop_id, reference, fingerprint, status, body in records])

    async def _send_all(self, commands: list[list[Any]]) -> list[Any]:
        """A pipeline without redis-py's per-argument packing and per-reply reading (pure
        Python in its asyncio client; together the largest cost of a gated purchase after the
        order's own writing): packed as RESP here, sent on the worker's one pipelined
        connection (``drops.crowd.redis_pipe``). An error reply is raised (the first one),
        after every reply of the batch was read."""
        if self._pipe is None:
            return await self._send_pooled(commands)
        return raise_first_error(await self._pipe.send(pack(commands), len(commands)))

    async def _send_pooled(self, commands: list[list[Any]]) -> list[Any]:
        """The same over one of redis-py's pooled connections (a TLS URL, which the pipe does
        not speak)."""
        pool = self.client.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(pack(commands), check_health=False)
            return [await conn.read_response() for _ in commands]
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def give_back(self, drop_id: int, *, customer_id: int, quantities: Mapping[int, int],
                        reference: str | None = None) -> None:
        k = self.keys(drop_id)
        await self._give_back(keys=[k.left, k.buyers, k.idem(reference or "-")],
                              args=[customer_id, "1" if reference else "0", *_pairs(quantities)])

    async def end_leases(self, drop_id: int, how: str, members: list[str], *,
                         forget: str | None = None) -> int:
        """Ends purchase leases (``END_LEASES``: ``how`` is keep, return, release or drop)
        and, with ``forget`` (a reference), forgets that key; returns how many were taken
        again."""
        return int(await self._end_leases(keys=self.keys(drop_id).for_leases(forget),
                                          args=[how, "1" if forget else "0", *members]))

    async def record_first(self, drop_id: int, reference: str, record: str) -> str | None:
        """Stores ``record`` as the key's, unless it has one: returns that one, else None."""
        existing = await self._record_first(keys=[self.keys(drop_id).idem(reference)],
                                            args=[record, IDEMPOTENCY_TTL_SECONDS])
        return None if existing is None else _text(existing)

    async def forget(self, drop_id: int, reference: str) -> None:
        await self.client.delete(self.keys(drop_id).idem(reference))

    async def complete(self, drop_id: int, *, reference: str, fingerprint: str, status: int,
                       body: Any) -> None:
        await self.complete_many([(drop_id, reference, fingerprint, status, json.dumps(body))])

    async def stored(self, drop_id: int, reference: str) -> str | None:
        value = await self.client.get(self.keys(drop_id).idem(reference))
        return None if value is None else _text(value)


class SyncGate(RedisGate):
    """The same gate over a blocking client: reconcile, and the two-step hold flows."""

    def take_sync(self, request: TakeRequest) -> Verdict:
        keys, args = self._take_args(request)
        return _verdict(self._take(keys=keys, args=args))

    def give_back_sync(self, drop_id: int, *, customer_id: int, quantities: Mapping[int, int],
                       reference: str | None = None) -> None:
        k = self.keys(drop_id)
        self._give_back(keys=[k.left, k.buyers, k.idem(reference or "-")],
                        args=[customer_id, "1" if reference else "0", *_pairs(quantities)])

    def end_leases_sync(self, drop_id: int, how: str, members: list[str]) -> int:
        return int(self._end_leases(keys=self.keys(drop_id).for_leases(), args=[how, "0",
                                                                               *members]))

    def sweep_leases_sync(self, drop_id: int, *, now_ms: int) -> int:
        """Reclaims the drop's lapsed purchase leases now; returns how many."""
        return int(self._sweep_leases(keys=self.keys(drop_id).for_leases()[:5], args=[now_ms]))

    def convert_hold_sync(self, drop_id: int, member: str) -> bool:
        k = self.keys(drop_id)
        return bool(self._convert(keys=[k.holds, k.hold_info], args=[member]))

    def reconcile(self, session: Session, *, drop: Drop, now: datetime) -> dict[str, int]:
        """Rebuilds the drop's keys from PostgreSQL (the truth): units left per pool (slot rows,
        which already exclude sold and actively held units), each buyer's count, the active
        holds with their expiry, the admission tokens used. Run after reclaiming expired holds
        (the caller's transaction), so expired holds are not counted twice. Idempotency records
        are not rebuilt: a replay after a Redis loss is caught by the orders' unique checkout
        reference in PostgreSQL and answered from the order, if its body is the one recorded
        with the order's key (``idempotency_records``, written by the order's batch)."""
        state = read_state(session, drop=drop)
        k = self.keys(drop.id)
        leases = _live_leases(session, self.client, k)
        for _expires, info in leases.values():
            _apply_lease(state, info)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(*k.all())
        if state["left"]:
            pipe.hset(k.left, mapping={str(p): n for p, n in state["left"].items()})
        if state["buyers"]:
            pipe.hset(k.buyers, mapping={str(c): n for c, n in state["buyers"].items()})
        if state["tokens"]:
            pipe.hset(k.tokens, mapping={str(c): n for c, n in state["tokens"].items()})
        for member, (expires_ms, info) in state["holds"].items():
            pipe.zadd(k.holds, {member: expires_ms})
            pipe.hset(k.hold_info, member, info)
        for member, (expires_ms, info) in leases.items():
            pipe.zadd(k.leases, {member: expires_ms})
            pipe.hset(k.lease_info, member, info)
        pipe.hset(k.meta, mapping={"starts": int(drop.starts_at.timestamp() * 1000),
                                   "ends": int(drop.ends_at.timestamp() * 1000),
                                   "limit": drop.per_person_limit,
                                   "loaded_at": int(now.timestamp() * 1000)})
        pipe.execute()
        return {"left": sum(state["left"].values()), "buyers": len(state["buyers"]),
                "holds": len(state["holds"])}


def hold_member(hold_id: int) -> str:
    return f"h{hold_id}"


def _live_leases(session: Session, client: Any, k: DropKeys) -> dict[str, tuple[float, str]]:
    """The drop's live purchase leases whose order is not in PostgreSQL yet: their units are
    taken in Redis only, so a rebuild from PostgreSQL keeps them taken. A lease whose order is
    already committed is counted by the rows (and its settle then finds nothing to do)."""
    expiries = {_text(m): float(score) for m, score in
                client.zrange(k.leases, 0, -1, withscores=True)}
    if not expiries:
        return {}
    infos = dict(zip(expiries, client.hmget(k.lease_info, list(expiries)), strict=True))
    written = set(session.scalars(select(Order.checkout_reference).where(
        Order.checkout_reference.in_({reference_of(m) for m in expiries}))))
    return {m: (expires, _text(infos[m])) for m, expires in expiries.items()
            if infos[m] is not None and not _text(infos[m]).startswith("X")
            and reference_of(m) not in written}


def _apply_lease(state: dict[str, Any], info: str) -> None:
    """A live lease's take applied to a state read from PostgreSQL (as ``LEASE_LIB`` takes)."""
    customer, n, _before, pairs = info.split("|", 3)
    total = 0
    for pair in filter(None, pairs.split(";")):
        pool, quantity = (int(part) for part in pair.split(":"))
        state["left"][pool] = state["left"].get(pool, 0) - quantity
        total += quantity
    state["buyers"][int(customer)] = state["buyers"].get(int(customer), 0) + total
    if int(n) > state["tokens"].get(int(customer), 0):
        state["tokens"][int(customer)] = int(n)


def read_state(session: Session, *, drop: Drop) -> dict[str, Any]:
    left = {int(pool): int(total or 0) for pool, total in session.execute(
        select(DropSlot.pool, func.sum(DropSlot.remaining)).where(DropSlot.drop_id == drop.id)
        .group_by(DropSlot.pool))}
    buyers = {cid: units for cid, units in session.execute(
        select(DropBuyer.customer_id, DropBuyer.units).where(DropBuyer.drop_id == drop.id,
                                                             DropBuyer.units > 0))}
    tokens = {cid: used for cid, used in session.execute(
        select(DropQueueEntry.customer_id, DropQueueEntry.tokens_used).where(
            DropQueueEntry.drop_id == drop.id, DropQueueEntry.tokens_used > 0))}
    holds: dict[str, tuple[int, str]] = {}
    for hold in session.scalars(select(DropHold).where(DropHold.drop_id == drop.id,
                                                       DropHold.status == HoldStatus.active)):
        per_pool: dict[int, int] = {}
        for pool, _slot, q in hold.takes:
            per_pool[pool] = per_pool.get(pool, 0) + q
        holds[hold_member(hold.id)] = (
            int(hold.expires_at.timestamp() * 1000),
            f"{hold.customer_id}|" + ";".join(f"{p}:{q}" for p, q in sorted(per_pool.items())))
    return {"left": left, "buyers": buyers, "tokens": tokens, "holds": holds}


def reconcile(db: Database, gate: SyncGate, *, clock: Clock, drop_id: int) -> dict[str, int]:
    """Expired holds reclaimed in PostgreSQL, then the drop's Redis keys rebuilt from it."""
    with db.transaction() as session:
        drop = service.get_drop(session, drop_id)
        service.reclaim_and_offer(session, clock=clock, drop=drop)
    with db.transaction() as session:
        return gate.reconcile(session, drop=service.get_drop(session, drop_id), now=clock.now())
