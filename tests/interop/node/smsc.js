// A small SMSC built on the npm `smpp` package (an SMPP stack independent of ours),
// driven by tests/smpp/test_interop.py. It prints one JSON line per event on stdout:
// first {"event":"listening","port":N}, then what it decoded from the ESME, so the
// test can check that our encoder's bytes mean the same thing to another decoder.
'use strict';
const smpp = require('smpp');

const PASSWORD = process.env.SMSC_PASSWORD || 'secret';
const RECEIPT_DELAY_MS = 20;
let nextId = 0xabc000;

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Dates, buffers and nested objects as JSON-friendly values.
function plain(value) {
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return { hex: value.toString('hex') };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const result = {};
    for (const [key, item] of Object.entries(value)) result[key] = plain(item);
    return result;
  }
  return value;
}

function receiptDate(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return pad(date.getUTCFullYear() % 100) + pad(date.getUTCMonth() + 1) + pad(date.getUTCDate()) +
    pad(date.getUTCHours()) + pad(date.getUTCMinutes());
}

const server = smpp.createServer((session) => {
  const bind = (pdu) => {
    out({ event: pdu.command, system_id: pdu.system_id, password: pdu.password,
          interface_version: pdu.interface_version });
    if (pdu.password !== PASSWORD) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      return;
    }
    session.send(pdu.response({ system_id: 'nodesmsc' }));
  };
  ['bind_transceiver', 'bind_transmitter', 'bind_receiver'].forEach((c) => session.on(c, bind));

  session.on('submit_sm', (pdu) => {
    const id = (nextId++).toString(16);
    out({ event: 'submit_sm', message_id: id, fields: plain(pdu) });
    session.send(pdu.response({ message_id: id }));
    if (pdu.registered_delivery & 0x03) {
      const submitted = new Date();
      setTimeout(() => {
        const text = `id:${id} sub:001 dlvrd:001 submit date:${receiptDate(submitted)} ` +
          `done date:${receiptDate(new Date())} stat:DELIVRD err:000 text:`;
        session.deliver_sm({
          source_addr: pdu.destination_addr,
          destination_addr: pdu.source_addr,
          esm_class: 0x04,
          data_coding: 0,
          short_message: text,
          receipted_message_id: id,
          message_state: 2,
        }, (resp) => out({ event: 'deliver_sm_resp', command_status: resp.command_status }));
      }, RECEIPT_DELAY_MS);
    }
  });

  session.on('enquire_link', (pdu) => {
    out({ event: 'enquire_link', sequence_number: pdu.sequence_number });
    session.send(pdu.response());
  });

  session.on('unbind', (pdu) => {
    out({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });

  session.on('error', (err) => out({ event: 'error', message: String(err) }));
  session.on('close', () => out({ event: 'close' }));
});

server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }));

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
