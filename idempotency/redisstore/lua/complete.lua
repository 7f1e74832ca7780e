-- Complete. KEYS[1]: the record. ARGV: owner, ttl (ms), field ("value" or
-- "error"), payload. Returns held's code.
local h = held(KEYS[1], ARGV[1])
if h == 1 then
  redis.call('HSET', KEYS[1], 'state', 'completed', ARGV[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return h
