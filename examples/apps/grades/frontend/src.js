const socket = new WebSocket(`wss://${location.host}/ws`);
socket.onmessage = (event) => console.log(event.data);
