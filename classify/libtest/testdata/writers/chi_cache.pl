# CHI (Debian's libchi-perl) with its Redis driver (libchi-driver-redis-perl)
# writing cache entries into a real Redis through CHI's public API with its
# defaults (namespace Default, no prefix), for classify/libtest's scan
# accuracy test.
# usage: perl chi_cache.pl WRITER HOST PORT DB   (exit 77 without it)
use strict;
use warnings;
BEGIN { eval { require CHI; require CHI::Driver::Redis; require Redis; 1 } or exit 77 }
my ($writer, $host, $port, $db) = @ARGV;
my $redis = Redis->new(server => "$host:$port", encoding => undef);
$redis->select($db);
my $cache = CHI->new(driver => 'Redis', redis => $redis);
for my $i (0 .. 19) {
    $cache->set("product/$i", { id => $i, name => "lamp $i", price => 19.9 }, "10 minutes");
}
for my $lang (qw(en de fr it es nl pl sv da fi)) {
    $cache->compute("menu:$lang", "1 hour", sub { [ 'home', 'shop', $lang ] });
}
