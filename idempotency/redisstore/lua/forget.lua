-- Forget. KEYS[1]: the record; KEYS[2]: the key's generation. Deletes the
-- record if it is completed and starts the key's next generation, kept at
-- least as long as the record would have lived; returns 1 if it did, 0
-- otherwise (no live record, or an in-progress claim, which is left
-- alone).
local r = redis.call('HMGET', KEYS[1], 'state', 'gen')
if r[1] ~= 'completed' then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
local cur = redis.call('PTTL', KEYS[2])
redis.call('SET', KEYS[2], (tonumber(r[2]) or 0) + 1)
if ttl == -1 or cur == -1 then
  -- The record, or the generation already, was kept without expiry: so
  -- is the generation (SET cleared any expiry).
elseif cur > ttl then
  redis.call('PEXPIRE', KEYS[2], cur)
else
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('DEL', KEYS[1])
return 1
