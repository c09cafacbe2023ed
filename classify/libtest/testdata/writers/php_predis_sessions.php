<?php
// Predis's session handler (Debian's php-predis) writing PHP sessions into a
// real Redis with its defaults (no key prefix: the keys are the session ids;
// TTL session.gc_maxlifetime), for classify/libtest's scan accuracy test.
// usage: php php_predis_sessions.php WRITER HOST PORT DB   (exit 77 without it)
$autoload = '/usr/share/php/Predis/autoload.php';
if (!file_exists($autoload)) { exit(77); }
require $autoload;
[$_, $writer, $host, $port, $db] = $argv;
$client = new Predis\Client(['host' => $host, 'port' => (int) $port, 'database' => (int) $db]);
$handler = new Predis\Session\Handler($client);
$handler->register();
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
for ($i = 0; $i < 25; $i++) {
    session_id(session_create_id());
    session_start();
    $_SESSION['user_id'] = $i;
    $_SESSION['locale'] = 'de';
    $_SESSION['cart'] = [$i, $i + 1];
    session_write_close();
}
