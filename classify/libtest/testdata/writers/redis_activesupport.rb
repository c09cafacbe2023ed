# redis-activesupport's ActiveSupport::Cache::RedisStore (Debian's
# ruby-redis-activesupport, the redis-store family's cache store, not Rails'
# RedisCacheStore) writing cache entries into a real Redis with its defaults,
# for classify/libtest's scan accuracy test.
# usage: ruby redis_activesupport.rb WRITER HOST PORT DB   (exit 77 without it)
begin
  require "active_support"
  require "active_support/core_ext/numeric/time"
  require "redis-activesupport"
rescue LoadError
  exit 77
end
writer, host, port, db = ARGV
store = ActiveSupport::Cache::RedisStore.new("redis://#{host}:#{port}/#{db}")
30.times do |i|
  store.write("catalog/item/#{i}", { id: i, title: "chair #{i}" }, expires_in: 30.minutes)
end
15.times do |i|
  store.write("reviews-for-#{i * 7}", ["great", "ok"], expires_in: 2.hours)
end
store.write("nav", "<nav></nav>")
