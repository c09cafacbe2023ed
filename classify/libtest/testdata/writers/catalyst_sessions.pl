# Catalyst's session plugin (Debian's libcatalyst-plugin-session-perl) with
# its Redis store (libcatalyst-plugin-session-store-redis-perl) and the
# cookie state, writing sessions into a real Redis through a Catalyst app's
# public session API with their defaults, for classify/libtest's scan
# accuracy test (holdout round 8).
# usage: perl catalyst_sessions.pl WRITER HOST PORT DB   (exit 77 without it)
use strict;
use warnings;
BEGIN {
    eval { require Catalyst; require Catalyst::Plugin::Session::Store::Redis; require Catalyst::Plugin::Session::State::Cookie; require Catalyst::Test; 1 }
      or exit 77;
}
my ($writer, $host, $port, $db);
BEGIN { ($writer, $host, $port, $db) = @ARGV }

package Shop::Controller::Root;
use base 'Catalyst::Controller';
__PACKAGE__->config(namespace => '');
sub login : Local : Args(1) {
    my ($self, $c, $uid) = @_;
    $c->session->{user_id} = $uid;
    $c->session->{cart}    = [ 1, 2 ];
    $c->res->body('ok');
}

package Shop;
use Catalyst qw/Session Session::Store::Redis Session::State::Cookie/;
# the controller above lives in this file, where Catalyst's component search
# does not look
sub setup_components {
    my $class = shift;
    $class->next::method(@_);
    $class->components->{'Shop::Controller::Root'} = $class->setup_component('Shop::Controller::Root');
}
Shop->config(
    name              => 'Shop',
    'Plugin::Session' => { redis_server => "$host:$port", redis_db => $db },
);
Shop->setup;

package main;
Catalyst::Test->import('Shop');
for my $i (0 .. 24) {
    my $res = request("/login/$i");
    die "status " . $res->code . "\n" unless $res->is_success;
}
