<?php
// Symfony Cache's RedisAdapter (Debian's php-symfony-cache) writing cache
// items into a real Redis, for classify/libtest's scan accuracy test.
// usage: php symfony_cache.php WRITER HOST PORT DB   (exit 77 without it)
$autoload = '/usr/share/php/Symfony/Component/Cache/autoload.php';
if (!extension_loaded('redis') || !file_exists($autoload)) { exit(77); }
require $autoload;
use Symfony\Component\Cache\Adapter\RedisAdapter;
[$_, $writer, $host, $port, $db] = $argv;
$client = RedisAdapter::createConnection("redis://$host:$port/$db");
$cache = new RedisAdapter($client, 'shop', 3600);
for ($i = 0; $i < 30; $i++) {
    $item = $cache->getItem("product_$i");
    $item->set(['id' => $i, 'name' => "lamp $i", 'price' => 19.9]);
    $cache->save($item);
    $item = $cache->getItem("user.profile.$i");
    $item->set("profile $i");
    $cache->save($item);
}
