#!/usr/bin/env bash
# Regenerates the value fixtures of scan's signature tests, each written by
# the format's reference (or the library's own) encoder:
#   python3 (Debian's): pickle 2/4/5, a Django session (pickle), zlib, gzip, JSON, msgpack (msgpack-python),
#     cachelib's RedisSerializer ("!" + pickle), a dogpile.cache CachedValue (its region's serialisation),
#     Django's signing (a session, a pickled task), CacheControl's Serializer ("cc=4," + msgpack),
#     aiohttp-session's session record (JSON), requests-cache's stored response (cattrs + pickle)
#   perl: a CHI cache object (its packed metadata header + Storable)
#   ruby: Marshal, an ActiveSupport::Cache::Entry (RedisCacheStore's value)
#   php: serialize(), igbinary (php-igbinary), the PHP session encoding (session_encode), a Laravel session payload
#   java/javac: Java serialization (ObjectOutputStream)
#   lz4, zstd: the reference command-line compressors
#   Go (gen/): gob, go-redis/cache's envelope, msgpack, snappy/s2 framing
# Needs: python3-msgpack python3-cachelib python3-dogpile.cache python3-django python3-cachecontrol python3-aiohttp-session python3-requests-cache libchi-perl ruby ruby-activesupport php-cli default-jdk-headless lz4 zstd.
set -euo pipefail
cd "$(dirname "$0")"
py=/usr/bin/python3
$py - <<'PY'
import pickle, zlib, gzip, json, msgpack
w = lambda n, b: open(n, "wb").write(b)
cart = {"items": [1, 2, 3], "total": 19.9}
w("pickle-p2.bin", pickle.dumps(cart, protocol=2))
w("pickle-p4.bin", pickle.dumps(cart, protocol=4))
w("pickle-p5.bin", pickle.dumps(cart, protocol=5))
w("pickle-django-session.bin", pickle.dumps({"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": "ab" * 20}, protocol=5))
doc = json.dumps({"id": 42, "name": "lamp", "tags": ["a", "b"] * 20}).encode()
w("zlib.bin", zlib.compress(doc))
w("gzip.bin", gzip.compress(doc, mtime=0))
w("json-document.bin", doc)
w("json-keyv.bin", json.dumps({"value": {"id": 42}, "expires": 1795000000000}).encode())
w("json-express-session.bin", json.dumps({"cookie": {"originalMaxAge": 86400000, "expires": "2026-11-27T10:00:00.000Z", "httpOnly": True, "path": "/"}, "userId": 42}, separators=(",", ":")).encode())
w("json-celery-message.bin", json.dumps({"body": "W10=", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"task": "shop.send_email", "id": "x"}, "properties": {"delivery_tag": "t"}}).encode())
w("msgpack-python-map.bin", msgpack.packb({"_permanent": True, "user_id": 42}))
w("msgpack-python-array.bin", msgpack.packb([1, 2, 3, "lamp"]))
from cachelib.serializers import RedisSerializer
w("pickle-cachelib.bin", RedisSerializer().dumps({"city": 4, "temp": 21.5}))
from dogpile.cache import make_region
region = make_region(serializer=pickle.dumps, deserializer=pickle.loads).configure("dogpile.cache.memory")
w("dogpile-cached-value.bin", region._serialized_cached_value(region._value({"id": 42, "name": "lamp"})))
PY
# signed payloads (Django's signing, as its sessions and Django Q sign them) and CacheControl's response
$py - <<'PY'
import io, json, pickle
w = lambda n, b: open(n, "wb").write(b)
import django
from django.conf import settings
settings.configure(SECRET_KEY="fixture")
from django.core import signing
# a Django session as the signed-cookie and redis-sessions stores encode it (SessionBase.encode)
w("signed-django-session.bin", signing.dumps({"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "cart": [1, 2]},
                                             salt="django.contrib.sessions.SessionStore", compress=True).encode())
# a task as Django Q signs it (SignedPackage: signing.dumps of the pickled task dict)
class PickleSerializer:
    def dumps(self, obj):
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    def loads(self, data):
        return pickle.loads(data)
w("signed-pickle-task.bin", signing.dumps({"id": "5f1c", "name": "ohio-alabama", "func": "math.copysign", "args": (2, -1), "kwargs": {}, "started": None},
                                          salt="django_q.signing", serializer=PickleSerializer).encode())
# an HTTP response as CacheControl's Serializer stores it ("cc=4," + msgpack)
import requests, urllib3
from cachecontrol.serialize import Serializer
req = requests.Request("GET", "http://example.test/api/products/1").prepare()
body = b'{"id": 1, "name": "lamp", "price": 19.9}'
resp = urllib3.HTTPResponse(body=io.BytesIO(body), headers={"Content-Type": "application/json", "Cache-Control": "max-age=600", "Server": "BaseHTTP/0.6 Python/3.11.2", "Date": "Thu, 03 Dec 2026 18:45:34 GMT"}, status=200, preload_content=False)
w("cachecontrol-response.bin", Serializer().dumps(req, resp, body))
# a response as requests-cache's redis backend stores it (its default serializer: cattrs + pickle)
import requests
from requests_cache.models import CachedResponse
from requests_cache.serializers import pickle_serializer
resp = requests.Response()
resp.status_code, resp._content, resp.encoding, resp.url = 200, b'{"id": 1, "name": "lamp", "price": 19.9}', "utf-8", "http://example.test/api/products/1"
resp.headers.update({"Content-Type": "application/json", "Cache-Control": "max-age=600", "Server": "BaseHTTP/0.6 Python/3.11.2"})
resp.request = requests.Request("GET", resp.url).prepare()
import datetime
resp.elapsed = datetime.timedelta(milliseconds=3)
w("pickle-requests-cache-response.bin", pickle_serializer.dumps(CachedResponse.from_response(resp)))
# a session record as aiohttp-session's RedisStorage stores it (its encoder, json.dumps, of the storage's session data)
from aiohttp_session import AbstractStorage, Session
sess = Session("5f1c", data=None, new=True)
sess["user_id"] = 42
w("json-aiohttp-session.bin", json.dumps(AbstractStorage._get_session_data(None, sess)).encode())
PY
# a cache object as Perl CHI stores it (its packed metadata, then Storable)
perl -MCHI -MCHI::CacheObject -MCHI::Serializer::Storable -e 'my $t = time;
open my $f, ">", "chi-cache-object.bin" or die; binmode $f;
print $f CHI::CacheObject->new("product/1", {id => 42, name => "lamp"}, $t, $t + 600, $t + 600, CHI::Serializer::Storable->new)->pack_to_data'
ruby -e 'require "active_support"; require "active_support/cache"
File.binwrite("marshal-hash.bin", Marshal.dump({"id" => 42, "name" => "lamp"}))
File.binwrite("marshal-rails-cache-entry.bin", Marshal.dump(ActiveSupport::Cache::Entry.new({"id" => 42}, expires_in: 3600)))'
php -r 'file_put_contents("php-serialize-array.bin", serialize(["id" => 42, "name" => "lamp"]));
file_put_contents("php-serialize-object.bin", serialize((object)["id" => 42]));
file_put_contents("php-laravel-session.bin", serialize(serialize(["_token" => str_repeat("a", 40), "_previous" => ["url" => "http://localhost"], "_flash" => ["old" => [], "new" => []]])));
if (function_exists("igbinary_serialize")) file_put_contents("php-igbinary.bin", igbinary_serialize(["id" => 42, "name" => "lamp"]));
session_start(); $_SESSION["user_id"] = 42; $_SESSION["csrf"] = "abc"; file_put_contents("php-session-encoding.bin", session_encode());' 2>/dev/null
tmp=$(mktemp -d)
javac -d "$tmp" Serialize.java && java -cp "$tmp" Serialize java-serialization.bin
rm -rf "$tmp"
printf '%s' "$(cat json-document.bin)" | lz4 -q -c > lz4-frame.bin
printf '%s' "$(cat json-document.bin)" | zstd -q -c > zstd-frame.bin
(cd ../../.. && go run ./scan/testdata/values/gen "$OLDPWD")
