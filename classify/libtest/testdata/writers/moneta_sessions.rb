# Rack::Session::Moneta (Debian's ruby-moneta) over Moneta's Redis adapter,
# writing sessions into a real Redis through Rack's public session API with
# its defaults (Moneta.new(:Redis, expires: true), no expire_after), for
# classify/libtest's scan accuracy test.
# usage: ruby moneta_sessions.rb WRITER HOST PORT DB   (exit 77 without it)
begin
  require "rack"
  require "rack/mock"
  require "moneta"
  require "rack/session/moneta"
rescue LoadError
  exit 77
end
writer, host, port, db = ARGV
app = lambda do |env|
  req = Rack::Request.new(env)
  env["rack.session"]["user_id"] = req.params["uid"].to_i
  env["rack.session"]["cart"] = [1, 2]
  [200, { "Content-Type" => "text/plain" }, ["ok"]]
end
store = Moneta.new(:Redis, host: host, port: port.to_i, db: db.to_i, expires: true)
sessions = Rack::Session::Moneta.new(app, store: store)
25.times do |i|
  res = Rack::MockRequest.new(sessions).get("/login?uid=#{i}")
  raise "status #{res.status}" unless res.status == 200
end
