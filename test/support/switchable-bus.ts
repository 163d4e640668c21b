import { Listeners, type BusListener, type BusMessage, type InstanceBus } from '../../server/realtime/bus';

/** An in-process bus whose health the test sets, as Redis going away and coming back would. */
export class SwitchableBus implements InstanceBus {
  healthy = true;
  private readonly listeners = new Listeners<BusMessage>();
  private readonly healthListeners = new Listeners<boolean>();

  async publish(message: BusMessage): Promise<void> {
    this.listeners.emit(message);
  }

  subscribe(listener: BusListener): () => void {
    return this.listeners.add(listener);
  }

  onHealthChange(listener: (healthy: boolean) => void): () => void {
    return this.healthListeners.add(listener);
  }

  setHealthy(healthy: boolean): void {
    this.healthy = healthy;
    this.healthListeners.emit(healthy);
  }

  async close(): Promise<void> {}
}
