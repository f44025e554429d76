/**
 * The device's wall clock. Until someone sets it (System.Time over HTTP, or the broker's Clock
 * answer) it counts seconds since boot, as real devices do: their replies then carry timestamps like
 * `448` and a 1970 `date` header (protocol §2.1, bytespider issues #15 and #22).
 */
export class DeviceClock {
  private bootedAt = Date.now();
  private offsetMs: number | undefined;

  /** Seconds: uptime while unset, Unix time once set. */
  now(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  date(): Date {
    return new Date(this.nowMs());
  }

  get isSet(): boolean {
    return this.offsetMs !== undefined;
  }

  set(unixSeconds: number): void {
    this.offsetMs = unixSeconds * 1000 - Date.now();
  }

  /** A reboot forgets the time; the device learns it again from the network. */
  reboot(): void {
    this.bootedAt = Date.now();
    this.offsetMs = undefined;
  }

  private nowMs(): number {
    return this.offsetMs === undefined ? Date.now() - this.bootedAt : Date.now() + this.offsetMs;
  }
}
