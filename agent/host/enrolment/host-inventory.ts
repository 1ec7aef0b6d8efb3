/** The host's VMs as the control stream reports them (host_control.proto HostInventory). */
import type { HostInventoryMsg } from '../../../common/wire/host-control-messages.ts';
import type { VmManager } from '../vm/vm-manager.ts';

export function hostInventory(vms: VmManager): HostInventoryMsg {
  return {
    vms: vms.list().map(({ config, runtime }) => ({
      name: config.name,
      // What is true now; the config's state is what the agent restores after a restart.
      state: runtime ? 'HOST_VM_STATE_RUNNING' : 'HOST_VM_STATE_STOPPED',
      disks: config.disks.map((d) => ({
        index: d.index,
        sizeBytes: String(d.sizeBytes),
        nbd: runtime?.nbd[d.index] ?? '',
      })),
      nics: config.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
    })),
  };
}
