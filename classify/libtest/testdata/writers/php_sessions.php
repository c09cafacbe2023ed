<?php
// phpredis's session handler writing PHP sessions into a real Redis, for
// classify/libtest's scan accuracy test.
// usage: php php_sessions.php WRITER HOST PORT DB   (exit 77 without phpredis)
if (!extension_loaded('redis')) { exit(77); }
[$_, $writer, $host, $port, $db] = $argv;
$prefix = $writer === 'phpredis-prefix' ? 'shop_web:' : '';
$path = "tcp://$host:$port?database=$db" . ($prefix !== '' ? "&prefix=$prefix" : '');
ini_set('session.save_handler', 'redis');
ini_set('session.save_path', $path);
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
for ($i = 0; $i < 25; $i++) {
    session_id(session_create_id());
    session_start();
    $_SESSION['user_id'] = $i;
    $_SESSION['csrf'] = bin2hex(random_bytes(16));
    $_SESSION['cart'] = [1, 2, 3];
    session_write_close();
}
