-- Direct kernel boot for templates (provider templates only, like `image`): a
-- kernel, an initrd and a command line on the hosts' shared storage. What small
-- appliance guests (and Basalt's own test guest) boot from, without a disk.
-- And where a template made from a VM came from.

ALTER TABLE templates
    ADD COLUMN kernel     text NOT NULL DEFAULT '',
    ADD COLUMN initrd     text NOT NULL DEFAULT '',
    ADD COLUMN cmdline    text NOT NULL DEFAULT '',
    ADD COLUMN source_vm_id uuid,
    ADD CONSTRAINT templates_boot_whole CHECK ((kernel = '') = (initrd = ''));

-- VMs remember their boot parameters (a template may change or go away).
ALTER TABLE vms
    ADD COLUMN kernel  text NOT NULL DEFAULT '',
    ADD COLUMN initrd  text NOT NULL DEFAULT '',
    ADD COLUMN cmdline text NOT NULL DEFAULT '';
