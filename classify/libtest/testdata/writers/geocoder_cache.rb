# Geocoder (Debian's ruby-geocoder) caching its lookups in a real Redis
# through its public API with its defaults (Geocoder.configure(cache:
# Redis.new): prefix geocoder:, no expiry), for classify/libtest's scan
# accuracy test (holdout round 8). The lookups go to a local Nominatim-shaped
# HTTP server (loopback), not to the Internet.
# usage: ruby geocoder_cache.rb WRITER HOST PORT DB   (exit 77 without it)
begin
  require "geocoder"
  require "redis"
  require "webrick"
  require "json"
rescue LoadError
  exit 77
end
writer, host, port, db = ARGV
srv = WEBrick::HTTPServer.new(Port: 0, BindAddress: "127.0.0.1", Logger: WEBrick::Log.new(File::NULL), AccessLog: [])
srv.mount_proc("/search") do |req, res|
  res["Content-Type"] = "application/json"
  res.body = JSON.dump([{ "place_id" => 1, "lat" => "52.52", "lon" => "13.40", "display_name" => req.query["q"],
                          "address" => { "city" => "Berlin", "country" => "Germany", "country_code" => "de" } }])
end
srv.mount_proc("/reverse") do |req, res|
  res["Content-Type"] = "application/json"
  res.body = JSON.dump({ "place_id" => 2, "lat" => req.query["lat"], "lon" => req.query["lon"], "display_name" => "Unter den Linden",
                         "address" => { "city" => "Berlin", "country" => "Germany", "country_code" => "de" } })
end
Thread.new { srv.start }
Geocoder.configure(lookup: :nominatim, use_https: false, cache: Redis.new(host: host, port: port.to_i, db: db.to_i),
                   nominatim: { host: "127.0.0.1:#{srv.config[:Port]}" }, http_headers: { "User-Agent" => "libtest" })
25.times do |i|
  r = Geocoder.search("#{i} Main Street, Springfield")
  raise "no result" if r.empty?
end
5.times { |i| Geocoder.search([52.5 + i / 100.0, 13.4]) }
srv.shutdown
