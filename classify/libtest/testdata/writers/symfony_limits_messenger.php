<?php
// Symfony RateLimiter (over a RedisAdapter cache pool, the library's
// storage) and Symfony Messenger's Redis transport, from Debian's
// php-symfony-* packages, writing into a real Redis for classify/libtest's
// scan accuracy test. Library defaults throughout.
// usage: php symfony_limits_messenger.php WRITER HOST PORT DB   (exit 77 without them)
[$_, $writer, $host, $port, $db] = $argv;
$base = '/usr/share/php/Symfony/Component';
$need = $writer === 'symfony-rate-limiter'
    ? ["$base/Cache/autoload.php", "$base/RateLimiter/autoload.php"]
    : ["$base/Messenger/autoload.php", "$base/Messenger/Bridge/Redis/autoload.php"];
if (!extension_loaded('redis')) { exit(77); }
foreach ($need as $f) { if (!file_exists($f)) { exit(77); } require_once $f; }

if ($writer === 'symfony-rate-limiter') {
    $client = Symfony\Component\Cache\Adapter\RedisAdapter::createConnection("redis://$host:$port/$db");
    $storage = new Symfony\Component\RateLimiter\Storage\CacheStorage(new Symfony\Component\Cache\Adapter\RedisAdapter($client));
    $policies = [
        ['id' => 'login', 'policy' => 'fixed_window', 'limit' => 10, 'interval' => '1 minute'],
        ['id' => 'api', 'policy' => 'sliding_window', 'limit' => 100, 'interval' => '1 hour'],
        ['id' => 'upload', 'policy' => 'token_bucket', 'limit' => 20, 'rate' => ['interval' => '10 minutes']],
    ];
    foreach ($policies as $cfg) {
        $factory = new Symfony\Component\RateLimiter\RateLimiterFactory($cfg, $storage);
        for ($i = 0; $i < 15; $i++) {
            $factory->create("203.0.113.$i")->consume(1);
        }
    }
} else {
    $conn = Symfony\Component\Messenger\Bridge\Redis\Transport\Connection::fromDsn("redis://$host:$port", ['dbindex' => (int) $db]);
    $transport = new Symfony\Component\Messenger\Bridge\Redis\Transport\RedisTransport($conn);
    for ($i = 0; $i < 20; $i++) {
        $msg = new stdClass();
        $msg->orderId = $i;
        $transport->send(new Symfony\Component\Messenger\Envelope($msg));
    }
    $delayed = new Symfony\Component\Messenger\Envelope(new stdClass(), [new Symfony\Component\Messenger\Stamp\DelayStamp(3600000)]);
    $transport->send($delayed);
}
