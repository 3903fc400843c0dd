/**
 * The opening of every sliding-window script: `now` in milliseconds on the Redis server's clock (so
 * processes whose clocks disagree still agree on a window), and the window and limit from ARGV[1] and
 * ARGV[2]. Windows are sorted sets of event times.
 */
export const SLIDING_WINDOW_PREAMBLE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])`
