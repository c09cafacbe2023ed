# ActiveSupport's RedisCacheStore (Rails.cache) writing into a real Redis,
# with no namespace (the default) or an application namespace, for
# classify/libtest's scan accuracy test.
# usage: ruby rails_cache.rb WRITER HOST PORT DB   (exit 77 without the gems)
begin
  require "active_support"
  require "active_support/core_ext/numeric/time"
  require "active_support/cache"
  require "active_support/cache/redis_cache_store"
rescue LoadError
  exit 77
end
writer, host, port, db = ARGV
opts = { url: "redis://#{host}:#{port}/#{db}" }
opts[:namespace] = "shop" if writer == "rails-cache-namespace"
store = ActiveSupport::Cache::RedisCacheStore.new(**opts)
40.times do |i|
  store.write("products/#{i}-20261125103000000000", { id: i, name: "lamp #{i}", price: 19.9 + i }, expires_in: 12.hours)
end
20.times do |i|
  store.write("user_profile/#{i * 31}", "<section>profile #{i}</section>" * 4)
end
%w[homepage_banners top_sellers categories_menu].each { |k| store.write(k, [1, 2, 3], expires_in: 10.minutes) }
