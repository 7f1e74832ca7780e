-- Complete. KEYS[1]: the record. ARGV: owner, ttl (ms), field ("value" or
-- "error"), payload, type (of a value). Returns held's code.
local h = held(KEYS[1], ARGV[1])
if h == 1 then
  if ARGV[3] == 'value' then
    redis.call('HSET', KEYS[1], 'state', 'completed', 'value', ARGV[4], 'type', ARGV[5])
  else
    redis.call('HSET', KEYS[1], 'state', 'completed', 'error', ARGV[4])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return h
