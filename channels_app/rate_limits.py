"""Provider rate limits: a token bucket per provider, shared by every worker through Redis.

The bucket holds up to one second of tokens (``rate`` of them) and refills continuously; each send
takes one. The Lua script refills, takes and answers in one step, on Redis's own clock, so
workers on several machines share one limit without races. Without Redis (the embedded mode: one
process) the bucket lives in process memory.

Rates come from the settings ``<CHANNEL>_RATE_PER_S`` (``EMAIL_RATE_PER_S``, ``SMS_RATE_PER_S``),
else the provider's default (email 50/s); 0 means no limit. If Redis does not answer, sends go
on unlimited (logged): the broker would be down too, and the provider still protects itself.
"""

import logging
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# KEYS[1] the bucket; ARGV[1] rate per second, ARGV[2] capacity. Returns the milliseconds to
# wait before a token is there (0: one was taken).
BUCKET_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now_ms
tokens = math.min(capacity, tokens + math.max(0, now_ms - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return wait
"""

_lock = threading.Lock()
_local_buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
_client = None
_script = None


def _redis_take(name: str, rate: float, capacity: float) -> float:
    global _client, _script
    if _script is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL)
        _script = _client.register_script(BUCKET_SCRIPT)
    return int(_script(keys=[f"ratelimit:{name}"], args=[rate, capacity])) / 1000


def _local_take(name: str, rate: float, capacity: float) -> float:
    with _lock:
        now = time.monotonic()
        tokens, at = _local_buckets.get(name, (capacity, now))
        tokens = min(capacity, tokens + (now - at) * rate)
        if tokens >= 1:
            _local_buckets[name] = (tokens - 1, now)
            return 0.0
        _local_buckets[name] = (tokens, now)
        return (1 - tokens) / rate


def rate_limit_take(name: str, rate: float) -> float:
    """Takes a token from ``name``'s bucket: 0 when taken, else the seconds until one is there
    (nothing taken). ``rate`` is per second; 0 or less means no limit."""
    if rate <= 0:
        return 0.0
    capacity = max(1.0, rate)
    if not settings.REDIS_URL:
        return _local_take(name, rate, capacity)
    try:
        return _redis_take(name, rate, capacity)
    except Exception as exc:  # Redis away: do not stall every send on it
        logger.warning("rate limit unavailable name=%s error=%s", name, exc)
        return 0.0


def rate_limit_wait(name: str, rate: float, *, max_wait: float = 1.0) -> float:
    """Takes a token, sleeping while the wait is short: 0 when taken, else the (longer) wait the
    caller should reschedule by instead of holding a worker."""
    deadline = time.monotonic() + max_wait
    while True:
        wait = rate_limit_take(name, rate)
        if wait <= 0:
            return 0.0
        if time.monotonic() + wait > deadline:
            return wait
        time.sleep(wait)
