vcl 4.1;
# One machine: the shop on 127.0.0.1:8000, purges from the machine itself.
# varnishd -a :6081 -f /path/to/deploy/varnish/local.vcl -s malloc,256m

backend shop {
    .host = "127.0.0.1";
    .port = "8000";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
}

acl purgers {
    "127.0.0.1";
    "::1";
}

include "./dropline.vcl";
