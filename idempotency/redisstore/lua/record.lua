-- Shared by every script. A record is a hash under KEYS[1]:
--   state        "in_progress" or "completed"
--   owner        the claim's owner token
--   fingerprint  the payload fingerprint given to the claim
--   value        the encoded result of a completed record, and
--   type         the Go type it was encoded from ("" for nil), or
--   error        the error message of a completed record that failed
--   gen          the key's generation when the record was claimed
-- and its expiry is the key's own: the lease while in progress, the TTL
-- once completed. Redis drops an expired key by itself, so an expired
-- record is simply absent.

-- The generation of a forgotten key is kept apart from its record, under
-- KEYS[2] of the claim and forget scripts (the record's name in a hash
-- tag, so that both keys live in one Cluster slot), so that it outlives
-- releases and lapsed leases.

-- read returns the live record as {state, owner, fingerprint, kind,
-- payload, pttl, type, gen}, kind being "v" (payload is the value), "e"
-- (payload is the error message) or "" (in progress, or no result), or
-- nil if there is none.
local function read(rec)
  local r = redis.call('HMGET', rec, 'state', 'owner', 'fingerprint', 'value', 'error', 'type', 'gen')
  if not r[1] then
    return nil
  end
  local kind, payload = '', ''
  if r[5] then
    kind, payload = 'e', r[5]
  elseif r[4] then
    kind, payload = 'v', r[4]
  end
  return {r[1], r[2] or '', r[3] or '', kind, payload, redis.call('PTTL', rec), r[6] or '', r[7] or '0'}
end

-- held reports whether owner holds the live claim on rec: 1 if so; 0 if
-- there is no live record; -1 if another owner holds it; -2 if it is
-- completed.
local function held(rec, owner)
  local r = redis.call('HMGET', rec, 'state', 'owner')
  if not r[1] then
    return 0
  end
  if r[1] ~= 'in_progress' then
    return -2
  end
  if r[2] ~= owner then
    return -1
  end
  return 1
end
