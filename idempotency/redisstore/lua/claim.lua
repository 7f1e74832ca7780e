-- Claim. KEYS[1]: the record; KEYS[2]: the key's generation. ARGV: owner,
-- fingerprint, lease (ms). Returns {gen} after claiming (the generation
-- the claim belongs to), or the live record (see read) unchanged, but
-- for one thing: an in-progress record without an expiry (an operator's
-- PERSIST, another program's write) gets this claim's lease, so that it
-- blocks its key for at most one lease from now rather than forever.
local rec = read(KEYS[1])
if rec then
  if rec[1] == 'in_progress' and rec[6] == -1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    rec[6] = redis.call('PTTL', KEYS[1])
  end
  return rec
end
-- A hash without a state is not a record: start afresh, dropping its
-- fields rather than let one pass for a result. (Only if there is one: a
-- script's first write decides whether an out-of-memory Redis refuses it,
-- and a DEL is always allowed.)
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[1])
end
local gen = redis.call('GET', KEYS[2]) or '0'
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'owner', ARGV[1], 'fingerprint', ARGV[2], 'gen', gen)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {gen}
