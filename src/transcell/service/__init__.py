"""Each transcell service as an OS process of its own (the distributed layout).

``transcell api``, ``scheduler``, ``conductor [--cell CELL]``, ``compute --host
HOST`` and ``placement`` each read an oslo.config file and run the same code the
embedded cloud runs in one process; only the transports differ: RabbitMQ for
RPC and HTTP with a Keystone token for the image, network and placement
services.
"""
