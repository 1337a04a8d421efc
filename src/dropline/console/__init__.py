"""The console's cross-domain pages (overview, drops, fulfilment network, playbooks, the
90-day checklist) and the playbooks they share with ``dropline playbook``."""
