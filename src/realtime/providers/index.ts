/** The provider adapters of docs/telephony/README.md, by endpoint name. */
import { AsteriskWire } from './asterisk.js';
import { JambonzWire } from './jambonz.js';
import { TwilioWire } from './twilio.js';
import { VonageWire } from './vonage.js';
import type { ProviderName, ProviderWire } from './wire.js';

export { JAMBONZ_SUBPROTOCOL } from './jambonz.js';
export { type ProviderName, type ProviderWire, providerNames } from './wire.js';

export function createWire(provider: ProviderName): ProviderWire {
  switch (provider) {
    case 'twilio':
      return new TwilioWire();
    case 'vonage':
      return new VonageWire();
    case 'jambonz':
      return new JambonzWire();
    case 'asterisk':
      return new AsteriskWire();
  }
}
