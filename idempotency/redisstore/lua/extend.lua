-- Extend. KEYS[1]: the record. ARGV: owner, lease (ms). Returns held's code.
local h = held(KEYS[1], ARGV[1])
if h == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return h
