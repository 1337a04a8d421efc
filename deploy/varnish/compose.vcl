vcl 4.1;
# deploy/compose.yaml: HAProxy in front of the nodes; purges from the compose network.

backend shop {
    .host = "haproxy";
    .port = "8080";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
}

acl purgers {
    "127.0.0.1";
    "172.16.0.0"/12;
    "10.0.0.0"/8;
}

include "./dropline.vcl";
