"""Python libraries writing their own keys into a real Redis, through their
public APIs, for classify/libtest's scan accuracy test.

usage: python3 python_libs.py WRITER HOST PORT DB

Exit 77 when the library is not installed (the test then skips the writer).
Every writer uses the library's defaults unless its name says "prefix".
"""
import sys
import uuid

writer, host, port, db = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
url = "redis://%s:%d/%d" % (host, port, db)

try:
    import redis
except ImportError:
    sys.exit(77)


def need(mod):
    try:
        return __import__(mod)
    except ImportError:
        sys.exit(77)


def celery_app(prefix):
    need("celery")
    from celery import Celery
    app = Celery("shop", broker=url, backend=url)
    if prefix:
        app.conf.broker_transport_options = {"global_keyprefix": prefix}
        app.conf.result_backend_transport_options = {"global_keyprefix": prefix}

    @app.task(name="shop.send_email")
    def send_email(to):
        return to

    for i in range(25):
        send_email.delay("user%d@example.com" % i)
    for i in range(10):
        send_email.apply_async(("x@example.com",), queue="emails")
    for i in range(15):
        app.backend.store_result(str(uuid.uuid4()), {"sent": True}, "SUCCESS")


def django_setup(prefix):
    need("django")
    need("django_redis")
    import django
    from django.conf import settings
    settings.configure(
        SECRET_KEY="libtest",
        INSTALLED_APPS=["django.contrib.sessions", "django.contrib.contenttypes", "django.contrib.auth"],
        CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": prefix,
                            "TIMEOUT": 300}},
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
    )
    django.setup()


def django_cache(prefix):
    django_setup(prefix)
    from django.core.cache import cache
    for i in range(40):
        cache.set("product:%d" % i, {"id": i, "name": "lamp %d" % i, "price": 19.9 + i})
    for i in range(20):
        cache.set("template.cache.sidebar.%032x" % (i * 7919), "<div>sidebar</div>" * 3)
    for name in ("homepage", "menu", "footer"):
        cache.set(name, ["a", "b", "c"], 600)


def django_sessions(prefix):
    django_setup(prefix)
    from django.contrib.sessions.backends.cache import SessionStore
    for i in range(30):
        s = SessionStore()
        s["_auth_user_id"] = str(i)
        s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        s["cart"] = [i, i + 1]
        s.create()


def rq_jobs():
    need("rq")
    from rq import Queue, SimpleWorker
    from datetime import timedelta
    r = redis.Redis(host=host, port=port, db=db)
    q = Queue(connection=r)
    hi = Queue("high", connection=r)
    for i in range(12):
        q.enqueue("os.getcwd")
    for i in range(4):
        hi.enqueue("os.path.getsize", "/nonexistent/%d" % i)  # fails: failed registry
    w = SimpleWorker([q, hi], connection=r)
    w.work(burst=True)
    for i in range(8):
        q.enqueue("os.getcwd")  # left pending
    for i in range(3):
        q.enqueue_in(timedelta(hours=1), "os.getcwd")


def limits_windows():
    need("limits")
    from limits import storage, strategies, parse
    st = storage.RedisStorage(url)
    fixed = strategies.FixedWindowRateLimiter(st)
    moving = strategies.MovingWindowRateLimiter(st)
    per_min = parse("10/minute")
    per_hour = parse("100/hour")
    for i in range(20):
        fixed.hit(per_min, "login", "10.0.%d.%d" % (i // 10, i))
        moving.hit(per_hour, "api", "user%d" % i)


def flask_sessions(prefix):
    need("flask")
    need("flask_session")
    from flask import Flask, session
    from flask_session import Session
    app = Flask("shop")
    app.config.update(SECRET_KEY="libtest", SESSION_TYPE="redis", SESSION_REDIS=redis.Redis(host=host, port=port, db=db))
    if prefix:
        app.config["SESSION_KEY_PREFIX"] = prefix
    Session(app)

    @app.route("/login/<int:uid>")
    def login(uid):
        # what Flask-Login and Flask-WTF put into a session
        session["_user_id"] = str(uid)
        session["_fresh"] = True
        session["csrf_token"] = uuid.uuid4().hex
        return "ok"

    for i in range(20):
        app.test_client().get("/login/%d" % i)


def flask_caching():
    need("flask")
    need("flask_caching")
    from flask import Flask
    from flask_caching import Cache
    app = Flask("shop")
    cache = Cache(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, "CACHE_DEFAULT_TIMEOUT": 300})

    @cache.memoize(timeout=600)
    def price(sku):
        return {"sku": sku, "price": 9.5}

    with app.app_context():
        for i in range(30):
            cache.set("user:%d" % i, {"id": i, "name": "user %d" % i})
            price("SKU-%04d" % i)
        cache.set("homepage", "<html>" * 20)


def cacheops_cached():
    django_setup_cacheops()
    from cacheops import cached

    @cached(timeout=600)
    def recommendations(user_id):
        return [user_id, user_id + 1]

    for i in range(30):
        recommendations(i)


def django_setup_cacheops():
    need("django")
    import importlib.util
    if importlib.util.find_spec("cacheops") is None:
        sys.exit(77)
    import django
    from django.conf import settings
    settings.configure(SECRET_KEY="libtest", INSTALLED_APPS=["cacheops"], CACHEOPS_REDIS=url,
                       DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
    django.setup()


def dogpile_cache():
    need("dogpile")
    from dogpile.cache import make_region
    region = make_region().configure("dogpile.cache.redis", expiration_time=600,
                                     arguments={"host": host, "port": port, "db": db})

    @region.cache_on_arguments()
    def product(pid):
        return {"id": pid, "name": "lamp %d" % pid, "price": 19.9}

    @region.cache_on_arguments()
    def recommendations(user_id, limit):
        return [user_id, user_id + 1][:limit]

    for i in range(30):
        product(i)
        recommendations(i, 2)
    region.set("front_page", "<html>" * 20)


def beaker_sessions():
    need("beaker")
    from beaker.session import Session
    for i in range(25):
        s = Session({}, type="ext:redis", url=url)
        s["user_id"] = i
        s["cart"] = [i]
        s.save()


def beaker_cache():
    need("beaker")
    from beaker.cache import CacheManager
    cm = CacheManager(type="ext:redis", url=url)
    products = cm.get_cache("products", expire=600)
    for i in range(25):
        products.put("product-%d" % i, {"id": i, "name": "lamp %d" % i})

    @cm.cache("menu", expire=300)
    def menu(lang):
        return ["home", "shop", lang]

    for lang in ("en", "de", "fr", "it", "es"):
        menu(lang)


def cachelib_cache():
    need("cachelib")
    from cachelib.redis import RedisCache
    c = RedisCache(host=host, port=port, db=db, default_timeout=300)
    for i in range(20):
        c.set("forecast:%d" % (1000 + i * 13), {"city": i, "temp": 21.5})
    for cur in ("EUR", "USD", "GBP", "CHF", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK"):
        c.set("rates:" + cur, [1.0, 1.1], timeout=60)


def http_server():
    """A local HTTP server (loopback) whose responses say Cache-Control:
    max-age=600, for the HTTP client caches below."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"id": 1, "name": "lamp", "price": 19.9}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "max-age=600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


def cachecontrol_cache():
    need("requests")
    need("cachecontrol")
    import requests
    from cachecontrol import CacheControl
    from cachecontrol.caches.redis_cache import RedisCache
    srv, base = http_server()
    sess = CacheControl(requests.Session(), cache=RedisCache(redis.Redis(host=host, port=port, db=db)))
    for i in range(25):
        sess.get("%s/api/products/%d?lang=en" % (base, i)).content
    for c in ("lamps", "chairs", "tables", "rugs", "shelves"):
        sess.get("%s/api/categories/%s" % (base, c)).content
    srv.shutdown()


def requests_cache_cache():
    need("requests")
    need("requests_cache")
    import requests_cache
    from requests_cache.backends.redis import RedisCache
    srv, base = http_server()
    sess = requests_cache.CachedSession("http_cache", backend=RedisCache(connection=redis.Redis(host=host, port=port, db=db)))
    for i in range(25):
        sess.get("%s/api/products/%d?lang=en" % (base, i)).content
    srv.shutdown()


def django_redis_sessions():
    need("django")
    need("redis_sessions")
    import django
    from django.conf import settings
    settings.configure(
        SECRET_KEY="libtest",
        INSTALLED_APPS=["django.contrib.sessions", "django.contrib.contenttypes", "django.contrib.auth"],
        SESSION_ENGINE="redis_sessions.session",
        SESSION_REDIS={"host": host, "port": port, "db": db},
    )
    django.setup()
    from redis_sessions.session import SessionStore
    for i in range(25):
        s = SessionStore()
        s["_auth_user_id"] = str(i)
        s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        s["cart"] = [i, i + 1]
        s.create()


def django_q_tasks():
    need("django")
    need("django_q")
    import django
    from django.conf import settings
    settings.configure(
        SECRET_KEY="libtest",
        INSTALLED_APPS=["django_q"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        Q_CLUSTER={"name": "shop", "redis": {"host": host, "port": port, "db": db}},
    )
    django.setup()
    from django_q.tasks import async_task
    for i in range(20):
        async_task("math.copysign", 2, -i)


# ---- holdout round 7: written before any evidence change of this pass,
# their values not read while the writers were written ----


def cachy_cache():
    need("cachy")
    from cachy import CacheManager
    cm = CacheManager({"default": "redis",
                       "stores": {"redis": {"driver": "redis", "host": host, "port": port, "db": db}}})
    cache = cm.store()
    for i in range(20):
        cache.put("weather.%d" % (2000 + i * 7), {"city": i, "temp": 18.5}, 10)

    @cache
    def price(shop, sku):  # cachy's key leaves the first argument out (a method's self)
        return {"sku": sku, "price": 9.5}

    for i in range(10):
        price("main", "SKU-%04d" % i)


def aiohttp_sessions():
    need("aiohttp")
    need("aiohttp_session")
    import asyncio
    from redis import asyncio as aioredis
    # aiohttp-session 2.11 imports aioredis 2, which has since been merged
    # into redis-py as redis.asyncio (what aiohttp-session 2.12 imports);
    # Debian ships aioredis 1.3, which 2.11 refuses: give it redis.asyncio
    aioredis.__version__ = redis.__version__
    sys.modules["aioredis"] = aioredis
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    import aiohttp_session
    from aiohttp_session.redis_storage import RedisStorage

    async def login(request):
        s = await aiohttp_session.get_session(request)
        s["user_id"] = int(request.match_info["uid"])
        s["cart"] = [1, 2]
        return web.Response(text="ok")

    async def main():
        r = aioredis.Redis(host=host, port=port, db=db)
        app = web.Application()
        aiohttp_session.setup(app, RedisStorage(r))
        app.router.add_get("/login/{uid}", login)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            for i in range(25):
                client.session.cookie_jar.clear()
                resp = await client.get("/login/%d" % i)
                assert resp.status == 200, resp.status
        await r.close()

    asyncio.run(main())


def channels_layer():
    need("channels_redis")
    import asyncio
    from channels_redis.core import RedisChannelLayer

    async def main():
        layer = RedisChannelLayer(hosts=[url])
        for i in range(10):
            for _ in range(2):
                await layer.group_add("room-%d" % i, await layer.new_channel())
            await layer.group_send("room-%d" % i, {"type": "chat.message", "text": "hello %d" % i})
        for worker in ("thumbnails", "emails", "exports", "webhooks", "search-index"):
            for j in range(3):
                await layer.send(worker, {"type": "task.run", "id": j})
        await layer.close_pools()

    asyncio.run(main())


# ---- holdout round 8: written before any evidence change of this pass,
# their values not read (only their key counts) ----


def apscheduler_jobs():
    need("apscheduler")
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.jobstores.redis import RedisJobStore
    s = BackgroundScheduler(jobstores={"default": RedisJobStore(host=host, port=port, db=db)})
    s.start(paused=True)
    for i in range(20):
        s.add_job("os:getcwd", "interval", minutes=5 + i, id="report-%d" % i)
    for i in range(5):
        s.add_job("os:getpid", "cron", hour=i, id="nightly-%d" % i)
    s.shutdown(wait=False)


def cachalot_queries():
    need("django")
    need("django_redis")
    need("cachalot")
    import django
    from django.conf import settings
    settings.configure(
        SECRET_KEY="libtest",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "cachalot"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}},
    )
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import Group, User
    for i in range(10):
        Group.objects.create(name="group-%d" % i)
        User.objects.create(username="user%d" % i)
    for i in range(10):
        list(Group.objects.filter(name="group-%d" % i))
        list(User.objects.filter(username="user%d" % i).values("id", "email"))


writers = {
    "celery": lambda: celery_app(""),
    "celery-prefix": lambda: celery_app("shop:"),
    "django-cache": lambda: django_cache(""),
    "django-cache-prefix": lambda: django_cache("shop"),
    "django-sessions": lambda: django_sessions(""),
    "django-sessions-prefix": lambda: django_sessions("shop"),
    "rq": rq_jobs,
    "limits": limits_windows,
    "flask-session": lambda: flask_sessions(""),
    "flask-session-prefix": lambda: flask_sessions("shop_auth:"),
    "flask-caching": flask_caching,
    "cacheops": cacheops_cached,
    "dogpile": dogpile_cache,
    "beaker-sessions": beaker_sessions,
    "beaker-cache": beaker_cache,
    "cachelib": cachelib_cache,
    "cachecontrol": cachecontrol_cache,
    "requests-cache": requests_cache_cache,
    "django-redis-sessions": django_redis_sessions,
    "django-q": django_q_tasks,
    "cachy": cachy_cache,
    "aiohttp-session": aiohttp_sessions,
    "channels": channels_layer,
    "apscheduler": apscheduler_jobs,
    "cachalot": cachalot_queries,
}
writers[writer]()
