-- Release. KEYS[1]: the record. ARGV: owner. Returns held's code.
local h = held(KEYS[1], ARGV[1])
if h == 1 then
  redis.call('DEL', KEYS[1])
end
return h
